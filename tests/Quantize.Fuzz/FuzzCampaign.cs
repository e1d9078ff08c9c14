using System.Globalization;
using System.Text;

namespace Quantize.Fuzz;

/// <summary>Runs cases in this process, each under a time bound, and summarises the results.</summary>
public static class FuzzCampaign
{
    /// <summary>
    /// Runs cases <paramref name="from"/> .. <paramref name="from"/> + <paramref name="count"/> - 1.
    /// A case over <paramref name="bound"/> is a <see cref="CaseOutcome.Hang"/> and ends the run (its
    /// thread cannot be stopped, and it owns the case folder).
    /// </summary>
    public static List<CaseResult> Run(
        IReadOnlyList<FuzzSeed> seeds, int campaignSeed, int from, int count, string workFolder, TimeSpan bound, Action<CaseResult>? report = null)
    {
        Directory.CreateDirectory(workFolder);
        var runner = new FuzzCase(workFolder);
        var results = new List<CaseResult>();
        for (int index = from; index < from + count; index++)
        {
            var (seed, mutated) = FuzzCase.Generate(seeds, campaignSeed, index);
            if (!RunBounded(() => runner.Run(index, seed, mutated), bound,
                () => new CaseResult(index, seed.Name, mutated.Description, CaseOutcome.Hang, $"still running after {bound.TotalSeconds:F0} s", bound), results, report))
            {
                break;
            }
        }

        return results;
    }

    /// <summary>
    /// Runs one case on a thread of its own (16 MiB stack: deep protobuf recursion), records its result, or a hang when it
    /// outlives <paramref name="limit"/>; false after a hang (the stuck thread keeps its state: the batch ends there).
    /// </summary>
    private static bool RunBounded(Func<CaseResult> run, TimeSpan limit, Func<CaseResult> hang, List<CaseResult> results, Action<CaseResult>? report)
    {
        CaseResult? result = null;
        var thread = new Thread(() => result = run(), 16 << 20) { IsBackground = true };
        thread.Start();
        var finished = thread.Join(limit);
        result = finished ? result! : hang();
        results.Add(result);
        report?.Invoke(result);
        return finished;
    }

    /// <summary>Which runner data cases use: the case's own choice (one in <see cref="DataMutator.CliEvery"/> the CLI), the library for all, or only the CLI cases.</summary>
    public enum DataRunners
    {
        AsGenerated,
        LibraryOnly,
        CliOnly,
    }

    /// <summary>
    /// Runs user-data cases <paramref name="from"/> .. <paramref name="from"/> + <paramref name="count"/> - 1 (<see cref="DataMutator"/>),
    /// as <see cref="Run"/> does model cases. <paramref name="skip"/> leaves out cases (they are not run nor counted).
    /// </summary>
    public static List<CaseResult> RunData(
        IReadOnlyList<FuzzSeed> seeds, int campaignSeed, int from, int count, string workFolder, TimeSpan bound,
        DataRunners runners = DataRunners.AsGenerated, Func<DataCase, bool>? skip = null, Action<CaseResult>? report = null)
    {
        Directory.CreateDirectory(workFolder);
        var runner = new DataFuzzCase(workFolder);
        var results = new List<CaseResult>();
        for (int index = from; index < from + count; index++)
        {
            var c = DataMutator.Generate(seeds, campaignSeed, index);
            if ((runners == DataRunners.CliOnly && !c.ViaCli) || (skip?.Invoke(c) ?? false))
            {
                continue;
            }

            bool? viaCli = runners == DataRunners.LibraryOnly ? false : null;
            if (!RunBounded(() => runner.Run(c, bound, viaCli), bound + TimeSpan.FromSeconds(5),
                () => new CaseResult(index, c.Seed, (c with { ViaCli = viaCli ?? c.ViaCli }).Label, CaseOutcome.Hang, $"still running after {bound.TotalSeconds:F0} s", bound), results, report))
            {
                break;
            }
        }

        return results;
    }

    /// <summary>Data cases per kind and per runner (library, CLI), then <see cref="Summarize"/>.</summary>
    public static string SummarizeData(IReadOnlyCollection<CaseResult> results)
    {
        var kinds = results.GroupBy(r => r.Mutation.Split(':')[0].Replace("+cli", "", StringComparison.Ordinal)).ToDictionary(g => g.Key, g => g.Count());
        int cli = results.Count(r => r.Mutation.Split(':')[0].EndsWith("+cli", StringComparison.Ordinal));
        return "per kind: " + string.Join(", ", DataMutator.Kinds.Select(k => $"{k} {kinds.GetValueOrDefault(k)}")) +
            $"; through the CLI process {cli}, the library {results.Count - cli}" + Environment.NewLine + Summarize(results);
    }

    /// <summary>Counts per outcome and per error code, the slowest case, and every unacceptable case in full.</summary>
    public static string Summarize(IReadOnlyCollection<CaseResult> results)
    {
        var c = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.AppendLine(c, $"{results.Count} case(s): {string.Join(", ",
            Enum.GetValues<CaseOutcome>().Select(o => $"{results.Count(r => r.Outcome == o)} {o}"))}");
        var codes = results.Where(r => r.Outcome is CaseOutcome.RejectedByLoader or CaseOutcome.RejectedByQuantizer)
            .GroupBy(r => r.Detail.Split(' ')[0]).OrderBy(g => g.Key, StringComparer.Ordinal);
        text.AppendLine("error codes: " + string.Join(", ", codes.Select(g => $"{g.Key} x{g.Count()}")));
        if (results.Count > 0)
        {
            var slowest = results.MaxBy(r => r.Elapsed)!;
            text.AppendLine(c, $"slowest case: #{slowest.Index} {slowest.Elapsed.TotalSeconds:F1} s ({slowest.Seed}: {slowest.Mutation})");
        }

        foreach (var bad in results.Where(r => !r.Acceptable))
        {
            text.AppendLine(c, $"case #{bad.Index} {bad.Outcome} ({bad.Seed}: {bad.Mutation}): {bad.Detail}");
        }

        return text.ToString();
    }
}
