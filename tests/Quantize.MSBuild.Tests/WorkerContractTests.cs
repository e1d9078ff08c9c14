using System.IO.Compression;
using Quantize.MSBuild.Tests.Infrastructure;

namespace Quantize.MSBuild.Tests;

/// <summary>The worker shipped in the package understands every option the task can pass it.</summary>
[Collection(PackageCollection.Name)]
public sealed class WorkerContractTests(PackageFixture fixture)
{
    [Fact]
    public void Every_setting_with_a_worker_option_is_an_option_of_the_packaged_worker()
    {
        var folder = Directory.CreateTempSubdirectory("quantize-worker-contract-");
        try
        {
            ZipFile.ExtractToDirectory(fixture.PackagePath, folder.FullName);
            var worker = Directory.GetFiles(folder.FullName, "Quantize.Cli.dll", SearchOption.AllDirectories).Single();

            var help = DotNet.Run(folder.FullName, null, worker, "quantize", "--help");

            Assert.Equal(0, help.ExitCode);
            // The settings' options, and those the task derives from folders and the metric/drop pair.
            string[] derived = ["--calibration", "--validation", "--report", "--html-report", "--check"];
            foreach (var option in QuantizeSettings.All.Select(s => s.WorkerOption).OfType<string>().Concat(derived))
            {
                Assert.Contains(option, help.Output);
            }
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }
}
