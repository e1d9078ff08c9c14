using Quantize.Fuzz;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Reliability;

/// <summary>
/// The in-CI user-data fuzz campaign (issue 15): seeded mutations of what users hand the quantizer besides the model
/// (.npy, .npz, .pb and image samples, sample lists, folder layouts, option values, links, long names, named pipes)
/// through <see cref="Quantizer.Run"/> in process and, for one case in ten, the CLI as a process; every case must end
/// in a coded error or a model ONNX Runtime loads, within a time bound, with the source model unchanged. The long
/// campaign is <c>dotnet run -c Release --project tests/Quantize.Fuzz -- --kind data --cases 10000 --seed 15</c>.
/// </summary>
public sealed class DataFuzzCampaignTests(ITestOutputHelper output)
{
    private const int LibraryCases = 200;
    private const int CliWindow = 100;
    private const int CampaignSeed = 20261207;

    private static readonly string SeedFolder = Path.Combine(AppContext.BaseDirectory, "Seeds");

    /// <summary>
    /// Mutations that hit open bugs in src/ (found by the long campaign, seed 15), left out here so CI stays green;
    /// the long campaign still runs them. Remove an entry when its bug is fixed.
    /// </summary>
    /// <summary>
    /// Mutations that found bugs, by description, excluded here until fixed (the long campaign still runs them). Empty:
    /// the campaign of seed 15 found six (a NUL in a list entry, an output folder that is a file through the library,
    /// PNG headers of 65535² and 100000² pixels, --app-threads 1000000, an unparsable option value without a QNT code),
    /// all fixed.
    /// </summary>
    private static readonly string[] KnownBugs = [];

    private static bool IsKnownBug(DataCase c) => KnownBugs.Any(b => c.Description.Contains(b, StringComparison.Ordinal));

    [Fact]
    public void Data_cases_are_deterministic_for_a_campaign_seed()
    {
        var seeds = FuzzSeed.FromFolder(SeedFolder).ToList();
        for (int i = 0; i < 100; i++)
        {
            var a = DataMutator.Generate(seeds, CampaignSeed, i);
            var b = DataMutator.Generate(seeds, CampaignSeed, i);
            Assert.Equal(a.Label, b.Label);
            Assert.Equal(a.CliArgs, b.CliArgs);
            Assert.Equal(a.Entries.Select(e => e.Path), b.Entries.Select(e => e.Path));
            Assert.Equal(a.Entries.OfType<FileEntry>().SelectMany(e => e.Bytes), b.Entries.OfType<FileEntry>().SelectMany(e => e.Bytes));
        }
    }

    [Fact]
    public void Every_mutated_user_input_ends_in_a_coded_error_or_a_valid_model()
    {
        var seeds = FuzzSeed.FromFolder(SeedFolder).ToList();
        using var work = new TempFolder();

        // The library: 200 cases in process (the CLI's cases too, through the library).
        var library = FuzzCampaign.RunData(seeds, CampaignSeed, 0, LibraryCases, work.Path, TimeSpan.FromSeconds(30),
            FuzzCampaign.DataRunners.LibraryOnly, IsKnownBug);

        // The CLI as a process: the one case in ten the campaign gives it, among the first 100 (~10 cases).
        var cli = FuzzCampaign.RunData(seeds, CampaignSeed, 0, CliWindow, work.Path, TimeSpan.FromSeconds(60),
            FuzzCampaign.DataRunners.CliOnly, IsKnownBug);

        var all = library.Concat(cli).ToList();
        string summary = FuzzCampaign.SummarizeData(all);
        output.WriteLine(summary);
        Assert.True(all.All(r => r.Acceptable), summary);
        Assert.True(library.Count >= LibraryCases - 20, summary);
        Assert.True(cli.Count >= 8, summary);

        // Every kind runs, and the campaign reaches both ends: coded refusals and quantized models.
        foreach (string kind in DataMutator.Kinds)
        {
            Assert.True(all.Any(r => r.Mutation.StartsWith(kind, StringComparison.Ordinal)), $"no {kind} case\n{summary}");
        }

        Assert.True(all.Count(r => r.Outcome == CaseOutcome.RejectedByQuantizer) >= 50, summary);
        Assert.True(all.Count(r => r.Outcome == CaseOutcome.Quantized) >= 20, summary);
        Assert.Contains(cli, r => r.Outcome == CaseOutcome.RejectedByQuantizer);
    }
}
