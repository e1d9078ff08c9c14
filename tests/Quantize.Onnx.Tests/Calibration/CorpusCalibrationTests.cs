using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Samples;

namespace Quantize.Onnx.Tests.Calibration;

/// <summary>Reads every calibration and validation sample of ../shared/corpus, when it is present on this machine.</summary>
public sealed class CorpusCalibrationTests
{
    private static string? FindCorpus()
    {
        foreach (string candidate in new[] { "/work/shared/corpus" })
        {
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        // Walk up from the test binaries to a sibling "shared/corpus" of the repository.
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "shared", "corpus");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static List<InputSpec> ModelInputs(string modelPath)
    {
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(modelPath));
        var initializers = model.Graph.Initializer.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        return model.Graph.Input.Where(i => !initializers.Contains(i.Name)).Select(InputSpec.FromValueInfo).ToList();
    }

    [Fact]
    public void ReadsEveryCorpusSample()
    {
        string? corpus = FindCorpus();
        if (corpus is null)
        {
            return; // The shared corpus is not on this machine.
        }

        int models = 0;
        foreach (string modelDir in Directory.GetDirectories(corpus).Order(StringComparer.Ordinal))
        {
            string? modelPath = Directory.GetFiles(modelDir, "*.onnx").SingleOrDefault();
            if (modelPath is null)
            {
                continue;
            }

            var inputs = ModelInputs(modelPath);
            foreach (string split in new[] { "calib", "val" })
            {
                string folder = Path.Combine(modelDir, split);
                if (!Directory.Exists(folder))
                {
                    continue;
                }

                var set = SampleSet.Open(folder, inputs);
                set.Validate();
                int expected = Directory.GetDirectories(folder).Length;
                Assert.Equal(expected, set.Count);

                int read = 0;
                foreach (var sample in set.Enumerate())
                {
                    Assert.Equal(inputs.Count, sample.Inputs.Count);
                    for (int i = 0; i < inputs.Count; i++)
                    {
                        Assert.Equal(inputs[i].ElementType, sample.Inputs[i].ElementType);
                        Assert.True(inputs[i].Accepts(sample.Inputs[i].Shape));
                        Assert.True(sample.Inputs[i].ElementCount > 0);
                    }

                    read++;
                }

                Assert.Equal(set.Count, read);
            }

            models++;
        }

        Assert.True(models > 0, $"no model folders in {corpus}");
    }
}
