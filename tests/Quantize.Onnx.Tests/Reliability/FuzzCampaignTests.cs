using Google.Protobuf;
using Quantize.Fuzz;
using Quantize.Onnx.Tests.TestModels;

namespace Quantize.Onnx.Tests.Reliability;

/// <summary>
/// The in-CI fuzz campaign: seeded truncations, bit flips and field mutations of the real waifu2x
/// model and of generated nets go through the loader and the quantizer; every case must end in a
/// coded error or a model ONNX Runtime loads, within a time bound. The long campaign is
/// <c>dotnet run -c Release --project tests/Quantize.Fuzz -- --cases 5000 --seed 1</c>.
/// </summary>
public sealed class FuzzCampaignTests
{
    private const int Cases = 300;
    private const int CampaignSeed = 20261126;

    private static readonly string SeedFolder = Path.Combine(AppContext.BaseDirectory, "Seeds");

    /// <summary>The generated seeds checked into tests/Quantize.Fuzz/Seeds, by file name.</summary>
    private static readonly (string File, Func<TestNet> Net)[] GeneratedSeeds =
    [
        ("convnet.onnx", () => TestNets.ConvNet()),
        ("convnet-constants-opset11.onnx", () => TestNets.ConvNet(weightsAsConstantNodes: true, opset: 11)),
        ("mlp.onnx", () => TestNets.Mlp()),
        ("lstm.onnx", () => ControlFlowNets.Lstm(bidirectional: true)),
        ("transformer.onnx", () => TransformerNet.Build()),
        ("convs-in-if.onnx", () => ControlFlowNets.ConvsInIf()),
        ("lstm-in-if.onnx", () => ControlFlowNets.LstmInIf()),
        ("convs-in-loop.onnx", () => LoopNets.ConvsInLoop()),
        ("if-in-loop.onnx", () => LoopNets.IfInLoop()),
        ("scan-rnn.onnx", () => LoopNets.ScanRnn([8, 2, 32])),
    ];

    [Fact]
    public void Seeds_in_the_repo_are_the_generated_test_nets()
    {
        // QUANTIZE_UPDATE_FUZZ_SEEDS=<repo>/tests/Quantize.Fuzz/Seeds rewrites them after TestNets changes.
        string? update = Environment.GetEnvironmentVariable("QUANTIZE_UPDATE_FUZZ_SEEDS");
        foreach (var (file, net) in GeneratedSeeds)
        {
            byte[] generated = net().Model.ToByteArray();
            if (update is not null)
            {
                File.WriteAllBytes(Path.Combine(update, file), generated);
                continue;
            }

            Assert.Equal(generated, File.ReadAllBytes(Path.Combine(SeedFolder, file)));
        }

        Assert.True(File.Exists(Path.Combine(SeedFolder, "waifu2x.onnx")));
    }

    [Fact]
    public void Cases_are_deterministic_for_a_campaign_seed()
    {
        var seeds = FuzzSeed.FromFolder(SeedFolder).ToList();
        for (int i = 0; i < 50; i++)
        {
            var (seedA, a) = FuzzCase.Generate(seeds, CampaignSeed, i);
            var (seedB, b) = FuzzCase.Generate(seeds, CampaignSeed, i);
            Assert.Equal(seedA.Name, seedB.Name);
            Assert.Equal(a.Description, b.Description);
            Assert.Equal(a.Bytes, b.Bytes);
        }
    }

    [Fact]
    public void Every_mutated_model_ends_in_a_coded_error_or_a_valid_model()
    {
        var seeds = FuzzSeed.FromFolder(SeedFolder).ToList();
        Assert.Equal(GeneratedSeeds.Length + 1, seeds.Count);
        using var work = new TempFolder();

        var results = FuzzCampaign.Run(seeds, CampaignSeed, 0, Cases, work.Path, TimeSpan.FromSeconds(30));

        string summary = FuzzCampaign.Summarize(results);
        Assert.True(results.Count == Cases && results.All(r => r.Acceptable), summary);

        // The campaign reaches every stage: parser, model checks, quantizer, and valid outputs.
        Assert.True(results.Count(r => r.Outcome == CaseOutcome.RejectedByLoader) >= 50, summary);
        Assert.True(results.Count(r => r.Outcome == CaseOutcome.RejectedByQuantizer) >= 50, summary);
        Assert.True(results.Count(r => r.Outcome == CaseOutcome.Quantized) >= 30, summary);
        foreach (string code in new[] { ErrorCodes.ModelCorrupt, ErrorCodes.TensorDataMismatch, ErrorCodes.ExternalDataOutsideModelFolder })
        {
            Assert.True(results.Any(r => r.Detail.StartsWith(code, StringComparison.Ordinal)), $"no case ended in {code}\n{summary}");
        }
    }
}
