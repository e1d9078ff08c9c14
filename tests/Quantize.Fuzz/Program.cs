using System.Diagnostics;
using System.Globalization;
using Quantize.Fuzz;

// The long fuzz campaign (the test suite runs a short one in process, FuzzCampaignTests):
//   dotnet run -c Release --project tests/Quantize.Fuzz -- --cases 5000 --seed 1 [--timeout 60] [--seeds <folder>]...
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
var bound = TimeSpan.FromSeconds(Int("--timeout", 60));
if (seedFolders.Count == 0)
{
    seedFolders.Add(Path.Combine(AppContext.BaseDirectory, "Seeds"));
}

var seeds = seedFolders.SelectMany(FuzzSeed.FromFolder).ToList();
string work = options.GetValueOrDefault("--work") ?? Path.Combine(Path.GetTempPath(), $"qnt-fuzz-{Environment.ProcessId}");

if (options.TryGetValue("--child", out var from))
{
    // A child: runs its cases and prints one line per case; the parent watches for crashes and hangs.
    Console.Out.Flush();
    FuzzCampaign.Run(seeds, campaignSeed, int.Parse(from, CultureInfo.InvariantCulture), Int("--count", batch), work, bound * 10, r =>
    {
        Console.WriteLine(r.ToLine());
        Console.Out.Flush();
    });
    return 0;
}

Console.WriteLine($"Fuzz campaign: {cases} cases, seed {campaignSeed}, per-case bound {bound.TotalSeconds:F0} s, seeds: {string.Join(", ", seeds.Select(s => s.Name))}");
var total = Stopwatch.StartNew();
var results = new List<CaseResult>();
int next = 0;
while (next < cases)
{
    int count = Math.Min(batch, cases - next);
    var child = StartChild(next, count);
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
                results.Add(new CaseResult(next, "?", Describe(next), CaseOutcome.Crash, $"the process running it ended with exit code {child.ExitCode}", TimeSpan.Zero));
            }
            else
            {
                child.Kill(entireProcessTree: true);
                results.Add(new CaseResult(next, "?", Describe(next), CaseOutcome.Hang, $"no result within {bound.TotalSeconds:F0} s; its process was killed", bound));
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

Console.WriteLine(FuzzCampaign.Summarize(results));
Console.WriteLine($"Total {total.Elapsed.TotalMinutes:F1} min.");
return results.All(r => r.Acceptable) ? 0 : 1;

string Describe(int index)
{
    var (seed, mutated) = FuzzCase.Generate(seeds, campaignSeed, index);
    return $"{seed.Name}: {mutated.Description}";
}

Process StartChild(int first, int count)
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

    start.ArgumentList.Add("--work");
    start.ArgumentList.Add(Path.Combine(work, $"child-{first}"));
    start.Environment["ORT_DISABLE_TELEMETRY"] = "1";
    return Process.Start(start)!;
}
