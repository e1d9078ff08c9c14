using System.Diagnostics;
using System.Globalization;
using Quantize.Fuzz;

// The long fuzz campaign (the test suite runs short ones in process, FuzzCampaignTests and DataFuzzCampaignTests):
//   dotnet run -c Release --project tests/Quantize.Fuzz -- --cases 5000 --seed 1 [--kind models|data|all] [--first <n>] [--timeout 60] [--seeds <folder>]...
// --kind models: mutated models (ModelMutator); data: what users hand us besides the model (DataMutator: samples,
// lists, folder layouts, option values, paths; one case in 10 through the CLI as a process); all (default): both,
// --cases of each, the model campaign first.
// Cases run in batches in child processes (this program with --child): a native crash or a hang
// costs one case, which is recorded, and the campaign goes on with the next one.
var options = new Dictionary<string, string>(StringComparer.Ordinal);
var seedFolders = new List<string>();
for (int i = 0; i + 1 < args.Length; i += 2)
{
    if (args[i] == "--seeds")
    {
        seedFolders.Add(args[i + 1]);
    }
    else
    {
        options[args[i]] = args[i + 1];
    }
}

int Int(string name, int fallback) => options.TryGetValue(name, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
int cases = Int("--cases", 5000), campaignSeed = Int("--seed", 1), batch = Int("--batch", 200);

// --first <n>: start at case n (cases n .. n + --cases - 1), e.g. to reproduce one case with --cases 1; its folder stays under --work.
int firstCase = Int("--first", 0);
var bound = TimeSpan.FromSeconds(Int("--timeout", 60));
if (seedFolders.Count == 0)
{
    seedFolders.Add(Path.Combine(AppContext.BaseDirectory, "Seeds"));
}

var seeds = seedFolders.SelectMany(FuzzSeed.FromFolder).ToList();
string kind = options.GetValueOrDefault("--kind") ?? "all";
if (kind is not ("models" or "data" or "all"))
{
    Console.Error.WriteLine($"--kind must be models, data or all, got '{kind}'.");
    return 2;
}

string work = options.GetValueOrDefault("--work") ?? Path.Combine(Path.GetTempPath(), $"qnt-fuzz-{Environment.ProcessId}");

if (options.TryGetValue("--child", out var from))
{
    // A child: runs its cases and prints one line per case; the parent watches for crashes and hangs.
    Console.Out.Flush();
    void Print(CaseResult r)
    {
        Console.WriteLine(r.ToLine());
        Console.Out.Flush();
    }

    int first = int.Parse(from, CultureInfo.InvariantCulture);
    if (kind == "data")
    {
        FuzzCampaign.RunData(seeds, campaignSeed, first, Int("--count", batch), work, bound * 10, report: Print);
    }
    else
    {
        FuzzCampaign.Run(seeds, campaignSeed, first, Int("--count", batch), work, bound * 10, Print);
    }

    return 0;
}

bool acceptable = true;
if (kind is "models" or "all")
{
    acceptable &= Campaign("models");
}

if (kind is "data" or "all")
{
    acceptable &= Campaign("data");
}

return acceptable ? 0 : 1;

bool Campaign(string caseKind)
{
    var dataSeeds = DataMutator.DataSeeds(seeds);
    Console.WriteLine(caseKind == "data"
        ? $"Data fuzz campaign: {cases} cases, seed {campaignSeed}, per-case bound {bound.TotalSeconds:F0} s, seeds: {string.Join(", ", dataSeeds.Select(s => s.Name))}, CLI {DataFuzzCase.CliPath}"
        : $"Fuzz campaign: {cases} cases, seed {campaignSeed}, per-case bound {bound.TotalSeconds:F0} s, seeds: {string.Join(", ", seeds.Select(s => s.Name))}");
    var total = Stopwatch.StartNew();
    var results = new List<CaseResult>();
    int next = firstCase;
    while (next < firstCase + cases)
    {
        int count = Math.Min(batch, firstCase + cases - next);
        var child = StartChild(next, count, caseKind);
        var lines = new System.Collections.Concurrent.BlockingCollection<string>();
        child.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                lines.CompleteAdding();
            }
            else
            {
                lines.Add(e.Data);
            }
        };
        child.ErrorDataReceived += (_, _) => { };
        child.BeginOutputReadLine();
        child.BeginErrorReadLine();
        int end = next + count;
        while (next < end)
        {
            if (!lines.TryTake(out var line, bound))
            {
                if (lines.IsCompleted)
                {
                    child.WaitForExit();
                    results.Add(new CaseResult(next, "?", Describe(next, caseKind), CaseOutcome.Crash, $"the process running it ended with exit code {child.ExitCode}", TimeSpan.Zero));
                }
                else
                {
                    child.Kill(entireProcessTree: true);
                    results.Add(new CaseResult(next, "?", Describe(next, caseKind), CaseOutcome.Hang, $"no result within {bound.TotalSeconds:F0} s; its process was killed", bound));
                }

                next++;
                break;
            }

            if (CaseResult.TryParse(line) is { } result && result.Index == next)
            {
                results.Add(result);
                next++;
                if (next % 250 == 0)
                {
                    Console.WriteLine($"  {next}/{cases} cases, {results.Count(r => !r.Acceptable)} unacceptable, {total.Elapsed.TotalMinutes:F1} min");
                }
            }
        }

        if (!child.HasExited)
        {
            child.WaitForExit();
        }

        child.Dispose();
    }

    Console.WriteLine(caseKind == "data" ? FuzzCampaign.SummarizeData(results) : FuzzCampaign.Summarize(results));
    Console.WriteLine($"Total {total.Elapsed.TotalMinutes:F1} min.");
    return results.All(r => r.Acceptable);
}

string Describe(int index, string caseKind)
{
    if (caseKind == "data")
    {
        var c = DataMutator.Generate(seeds, campaignSeed, index);
        return $"{c.Seed}: {c.Label}";
    }

    var (seed, mutated) = FuzzCase.Generate(seeds, campaignSeed, index);
    return $"{seed.Name}: {mutated.Description}";
}

Process StartChild(int first, int count, string caseKind)
{
    var start = new ProcessStartInfo
    {
        RedirectStandardOutput = true,
        RedirectStandardError = true,
        UseShellExecute = false,
    };
    string self = typeof(FuzzCase).Assembly.Location;
    if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet")
    {
        start.FileName = Environment.ProcessPath!;
        start.ArgumentList.Add(self);
    }
    else
    {
        start.FileName = Environment.ProcessPath!;
    }

    foreach (var (key, value) in new[] { ("--child", first), ("--count", count), ("--seed", campaignSeed), ("--timeout", (int)bound.TotalSeconds) })
    {
        start.ArgumentList.Add(key);
        start.ArgumentList.Add(value.ToString(CultureInfo.InvariantCulture));
    }

    foreach (var folder in seedFolders)
    {
        start.ArgumentList.Add("--seeds");
        start.ArgumentList.Add(folder);
    }

    start.ArgumentList.Add("--kind");
    start.ArgumentList.Add(caseKind);
    start.ArgumentList.Add("--work");
    start.ArgumentList.Add(Path.Combine(work, caseKind == "data" ? $"data-child-{first}" : $"child-{first}"));
    start.Environment["ORT_DISABLE_TELEMETRY"] = "1";
    return Process.Start(start)!;
}
