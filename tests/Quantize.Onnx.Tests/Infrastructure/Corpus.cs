namespace Quantize.Onnx.Tests.Infrastructure;

/// <summary>
/// The real-model corpus (pretrained models with real calibration and validation samples): <c>../shared/corpus</c>
/// beside the repository, or the folder named by QUANTIZE_CORPUS (the variable the benchmarks read too). It is not in
/// the repository, so the tests that need it are <see cref="CorpusFactAttribute"/>s and
/// <see cref="CorpusTheoryAttribute"/>s, which the runner reports skipped, with why, where it is absent.
/// </summary>
internal static class Corpus
{
    public const string Override = "QUANTIZE_CORPUS";

    private static readonly Lazy<(string? Folder, string? Unavailable)> Found = new(Find);

    /// <summary>Why the corpus cannot be read here, or null when it can.</summary>
    public static string? Unavailable => Found.Value.Unavailable;

    /// <summary>The corpus folder (only where <see cref="Unavailable"/> is null).</summary>
    public static string Folder => Found.Value.Folder ?? throw new InvalidOperationException(Unavailable);

    /// <summary>
    /// The model folders (each holds its <c>.onnx</c>, <c>calib/</c> and <c>val/</c>) by name, in ordinal order; none
    /// where the corpus is absent (its tests are skipped there, so their data is never asked for).
    /// </summary>
    public static IEnumerable<string> Models() => Unavailable is not null
        ? []
        : Directory.EnumerateDirectories(Folder)
            .Where(dir => Directory.EnumerateFiles(dir, "*.onnx").Any())
            .Select(dir => Path.GetFileName(dir)!)
            .Order(StringComparer.Ordinal);

    private static (string?, string?) Find()
    {
        const string NotChecked = "the tests on the real models were not run";
        if (Environment.GetEnvironmentVariable(Override) is { Length: > 0 } chosen)
        {
            return Directory.Exists(chosen)
                ? (Path.GetFullPath(chosen), null)
                : (null, $"{Override}={chosen} is not a folder: {NotChecked}");
        }

        if (Repository.RootOrNull is not { } root)
        {
            return (null, $"the repository (Quantize.MSBuild.sln) is not above {AppContext.BaseDirectory}, so ../shared/corpus cannot be found; set {Override} to the corpus folder: {NotChecked}");
        }

        string beside = Path.GetFullPath(Path.Combine(root, "..", "shared", "corpus"));
        return Directory.Exists(beside)
            ? (beside, null)
            : (null, $"the real-model corpus is not at {beside} (../shared/corpus beside the repository; or set {Override} to its folder): {NotChecked}");
    }
}

/// <summary>A test on the real-model corpus; skipped, with why, where the corpus is absent.</summary>
public sealed class CorpusFactAttribute : FactAttribute
{
    public CorpusFactAttribute()
    {
        if (Corpus.Unavailable is { } reason)
        {
            Skip = reason;
        }
    }
}

/// <summary>A theory over the real-model corpus; skipped as one test, with why, where the corpus is absent.</summary>
public sealed class CorpusTheoryAttribute : TheoryAttribute
{
    public CorpusTheoryAttribute()
    {
        if (Corpus.Unavailable is { } reason)
        {
            Skip = reason;
        }
    }
}
