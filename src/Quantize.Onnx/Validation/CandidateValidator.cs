using Quantize.Onnx.Hardware;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Reporting;
using Quantize.Onnx.Samples;

namespace Quantize.Onnx.Validation;

/// <summary>
/// Runs the accuracy gate's checks on candidates, in the declared targets' arithmetic. The FP32 model's validation
/// outputs are the same for every candidate, so they are computed once and kept when they fit a memory budget.
/// </summary>
internal sealed class CandidateValidator(
    QuantizeSession session, SampleSet validation, Int8Arithmetic arithmetic, Action<QuantizeProgress>? progress, CancellationToken cancellation)
{
    /// <summary>Most bytes of FP32 validation outputs kept in memory so candidates are not compared against a re-run FP32 model.</summary>
    private const long Fp32CacheBudgetBytes = 512L * 1024 * 1024;

    private List<Dictionary<string, FloatOutput>>? _fp32Outputs;
    private bool _fp32OutputsTooBig;

    /// <summary>The accuracy gate's measurements and verdicts for a candidate (no per-layer analysis).</summary>
    public ValidationReport Validate(Candidate candidate, HtmlReportSamples? images = null)
    {
        var gate = candidate.Options.Validation ?? throw new InvalidOperationException("No accuracy gate.");
        progress?.Invoke(new QuantizeProgress("validating", 0, validation.Count));
        return AccuracyGate.Evaluate(session.Fp32Bytes, candidate.Int8Bytes, session.InputNames, validation, gate.Checks, session.ValidationIsCalibration, cancellation, images,
            gate.BinaryThreshold, Fp32Outputs(), arithmetic);
    }

    /// <summary>The FP32 model's validation outputs, computed on first use and kept when they fit the budget; null otherwise.</summary>
    private List<Dictionary<string, FloatOutput>>? Fp32Outputs()
    {
        if (_fp32Outputs is not null || _fp32OutputsTooBig)
        {
            return _fp32Outputs;
        }

        var outputs = new List<Dictionary<string, FloatOutput>>(validation.Count);
        long bytes = 0;
        using var runner = new ModelRunner(session.Fp32Bytes, session.InputNames);
        for (var s = 0; s < validation.Count; s++)
        {
            cancellation.ThrowIfCancellationRequested();
            var result = runner.Run(validation.ReadSample(s));
            bytes += result.Values.Sum(o => (long)o.Values.Length * sizeof(float));
            if (bytes > Fp32CacheBudgetBytes)
            {
                _fp32OutputsTooBig = true;
                return null;
            }

            outputs.Add(result);
        }

        return _fp32Outputs = outputs;
    }
}
