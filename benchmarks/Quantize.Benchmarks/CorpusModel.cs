namespace Quantize.Benchmarks;

/// <summary>How a model's task quality is judged on its validation set.</summary>
internal enum TaskKind
{
    /// <summary>Only SQNR against the stored expected outputs.</summary>
    Generic,

    /// <summary>Super-resolution: PSNR of the clipped output against <c>hr.png</c>.</summary>
    SuperResolution,

    /// <summary>Classifier: top-1 against <c>label.txt</c> and against FP32.</summary>
    Classifier,

    /// <summary>Probability map (text detection): pixel agreement and IoU at a threshold.</summary>
    ProbabilityMap,
}

/// <summary>One corpus folder: <c>&lt;model&gt;.onnx</c>, <c>calib/NNN</c>, <c>val/NNN</c> (+ <c>expected/</c>).</summary>
internal sealed record CorpusModel(string Name, string ModelPath, string CalibrationFolder, string ValidationFolder, TaskKind Task)
{
    /// <summary>Class names by output index, for classifiers (PaddleOCR cls: 0 → '0', 1 → '180').</summary>
    public IReadOnlyList<string> Classes { get; init; } = [];

    public const float MapThreshold = 0.3f;

    public IReadOnlyList<string> ValidationSamples => SampleFolders(ValidationFolder);

    public IReadOnlyList<string> CalibrationSamples => SampleFolders(CalibrationFolder);

    public static IReadOnlyList<CorpusModel> Discover(string corpus)
    {
        var models = new List<CorpusModel>();
        foreach (var dir in Directory.EnumerateDirectories(corpus).Order(StringComparer.Ordinal))
        {
            var onnx = Directory.EnumerateFiles(dir, "*.onnx").Order(StringComparer.Ordinal).ToList();
            var calib = Path.Combine(dir, "calib");
            var val = Path.Combine(dir, "val");
            if (onnx.Count != 1 || !Directory.Exists(calib) || !Directory.Exists(val))
            {
                continue;
            }

            var name = Path.GetFileName(dir);
            var first = SampleFolders(val).FirstOrDefault() ?? val;
            var task = File.Exists(Path.Combine(first, "hr.png")) ? TaskKind.SuperResolution
                : File.Exists(Path.Combine(first, "label.txt")) ? TaskKind.Classifier
                : name.Contains("det", StringComparison.OrdinalIgnoreCase) ? TaskKind.ProbabilityMap
                : TaskKind.Generic;
            models.Add(new CorpusModel(name, onnx[0], calib, val, task)
            {
                // PaddleOCR text-direction classifier (MANIFEST: classes ['0','180']).
                Classes = task == TaskKind.Classifier ? ["0", "180"] : [],
            });
        }

        return models;
    }

    private static List<string> SampleFolders(string folder) =>
        Directory.EnumerateDirectories(folder)
            .Where(d => !Path.GetFileName(d).StartsWith('.'))
            .Order(StringComparer.Ordinal)
            .ToList();
}
