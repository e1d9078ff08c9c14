using System.Globalization;
using System.Text.Json.Nodes;
using Quantize.Onnx.Calibration;

namespace Quantize.Onnx.Tuning;

/// <summary>
/// What a run measured on its build machine and another machine would measure differently: the calibrated ranges
/// (FP32 float kernels round differently on AVX2, AVX-512 and ARM), the bias-correction shifts, and the ship decision
/// taken on measured speed. Kept in the lock file, they make every build machine write the same bytes.
/// </summary>
/// <param name="Ranges">The activation ranges the QDQ planner used (after the calibration method and saturation cuts).</param>
/// <param name="Channels">The per-channel ranges cross-layer equalization was steered by.</param>
/// <param name="BiasShifts">Per int32 bias tensor of a graph output's layer, the shift bias correction added to each channel.</param>
/// <param name="Ship">"int8", or why FP32 shipped ("kept-fp32-int8-not-faster", "kept-fp32-below-min-speedup").</param>
/// <param name="MeasuredOn">The machine the decision was measured on (its class label).</param>
internal sealed record RecordedRun(
    IReadOnlyDictionary<string, TensorRange> Ranges,
    IReadOnlyDictionary<string, ChannelRange> Channels,
    IReadOnlyDictionary<string, int[]> BiasShifts,
    string Ship,
    string MeasuredOn,
    double Speedup)
{
    public const string ShipInt8 = "int8";

    /// <summary>The only decisions taken on measured speed, which are all a lock file decides; every other check is deterministic and runs again.</summary>
    public const string KeptNotFaster = "kept-fp32-int8-not-faster";

    public const string KeptBelowMinSpeedup = "kept-fp32-below-min-speedup";

    /// <summary>Whether <see cref="Ship"/> is a speed decision that keeps FP32.</summary>
    public bool KeepsFp32ForSpeed => Ship is KeptNotFaster or KeptBelowMinSpeedup;

    public JsonObject ToJson()
    {
        var ranges = new JsonObject();
        foreach (var (name, r) in Ranges.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            ranges[name] = new JsonArray(r.Min, r.Max);
        }

        var channels = new JsonObject();
        foreach (var (name, c) in Channels.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            channels[name] = new JsonObject
            {
                ["min"] = new JsonArray([.. c.Min.Select(v => (JsonNode)v)]),
                ["max"] = new JsonArray([.. c.Max.Select(v => (JsonNode)v)]),
            };
        }

        var shifts = new JsonObject();
        foreach (var (name, s) in BiasShifts.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            shifts[name] = new JsonArray([.. s.Select(v => (JsonNode)v)]);
        }

        return new JsonObject
        {
            ["ship"] = Ship,
            ["measuredOn"] = MeasuredOn,
            ["speedup"] = Math.Round(Speedup, 2).ToString("0.00", CultureInfo.InvariantCulture),
            ["ranges"] = ranges,
            ["channelRanges"] = channels,
            ["biasShifts"] = shifts,
        };
    }

    /// <summary>Floats are written in their shortest round-trip form, so they read back to the same bits.</summary>
    public static RecordedRun FromJson(JsonObject o) => new(
        o["ranges"]!.AsObject().ToDictionary(kv => kv.Key, kv => new TensorRange((float)kv.Value![0]!, (float)kv.Value![1]!), StringComparer.Ordinal),
        o["channelRanges"]!.AsObject().ToDictionary(
            kv => kv.Key,
            kv => new ChannelRange(kv.Value!["min"]!.AsArray().Select(v => (float)v!).ToArray(), kv.Value!["max"]!.AsArray().Select(v => (float)v!).ToArray()),
            StringComparer.Ordinal),
        o["biasShifts"]!.AsObject().ToDictionary(kv => kv.Key, kv => kv.Value!.AsArray().Select(v => (int)v!).ToArray(), StringComparer.Ordinal),
        (string)o["ship"]!,
        (string?)o["measuredOn"] ?? "",
        double.Parse((string?)o["speedup"] ?? "0", CultureInfo.InvariantCulture));
}
