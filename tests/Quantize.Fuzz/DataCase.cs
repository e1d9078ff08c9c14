using Quantize.Onnx;

namespace Quantize.Fuzz;

/// <summary>One entry of a data case's folder, relative to the case folder.</summary>
public abstract record DataEntry(string Path);

/// <summary>A file with these bytes.</summary>
public sealed record FileEntry(string Path, byte[] Bytes) : DataEntry(Path);

/// <summary>An (empty) folder.</summary>
public sealed record FolderEntry(string Path) : DataEntry(Path);

/// <summary>A symbolic link to <paramref name="Target"/> (relative to the link's folder, as written; may dangle or loop).</summary>
public sealed record LinkEntry(string Path, string Target, bool ToFolder) : DataEntry(Path);

/// <summary>A named pipe (Linux only), where a file is expected: nothing ever writes to it.</summary>
public sealed record FifoEntry(string Path) : DataEntry(Path);

/// <summary>
/// A user-data case: the files a user hands the quantizer besides the model (calibration and validation samples,
/// sample lists, folder layouts, links and pipes) and option values, all relative to a case folder, run either
/// through <see cref="Quantizer.Run"/> in process or through the CLI as a process (<see cref="ViaCli"/>).
/// </summary>
/// <param name="Kind">npy, npz, pb, image, list, layout, options or paths.</param>
/// <param name="Model">The seed model's path in the case folder (its bytes must be the seed's after the case).</param>
/// <param name="Calibration">The calibration folder or list (null: none given).</param>
/// <param name="Validation">The validation folder or list (null: none given).</param>
/// <param name="Report">The CLI's --report path (null: none; the library writes no report).</param>
/// <param name="CliArgs">Option values for the CLI, after the model, output, calibration and validation.</param>
/// <param name="Apply">The same options for the library; may throw <see cref="QuantizeException"/> (parsing, as the CLI does).</param>
public sealed record DataCase(
    int Index,
    string Kind,
    string Seed,
    string Description,
    bool ViaCli,
    IReadOnlyList<DataEntry> Entries,
    string Model,
    string? Calibration,
    string? Validation,
    string Output,
    string? Report,
    IReadOnlyList<string> CliArgs,
    Func<QuantizationOptions, QuantizationOptions> Apply)
{
    /// <summary>What <see cref="CaseResult.Mutation"/> holds: kind, runner and description (enough to regenerate the case from its index).</summary>
    public string Label => $"{Kind}{(ViaCli ? "+cli" : "")}: {Description}";
}
