using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Samples;

namespace Quantize.Onnx.Tests.Calibration;

/// <summary>Reads every calibration and validation sample of ../shared/corpus (skipped where the corpus is absent).</summary>
public sealed class CorpusCalibrationTests
{
    /// <summary>Each model folder of the corpus with each of its sample folders: the layout has calib/ and val/ in every one.</summary>
    public static TheoryData<string, string> Splits()
    {
        var data = new TheoryData<string, string>();
        foreach (string model in Corpus.Models())
        {
            data.Add(model, "calib");
            data.Add(model, "val");
        }

        return data;
    }

    private static List<InputSpec> ModelInputs(string modelPath)
    {
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(modelPath));
        var initializers = model.Graph.Initializer.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        return model.Graph.Input.Where(i => !initializers.Contains(i.Name)).Select(InputSpec.FromValueInfo).ToList();
    }

    [CorpusTheory]
    [MemberData(nameof(Splits))]
    public void ReadsEveryCorpusSample(string model, string split)
    {
        string modelDir = Path.Combine(Corpus.Folder, model);
        var inputs = ModelInputs(Assert.Single(Directory.GetFiles(modelDir, "*.onnx")));
        string folder = Path.Combine(modelDir, split);
        Assert.True(Directory.Exists(folder), $"{folder} is missing (every corpus model has calib/ and val/)");
        int expected = Directory.GetDirectories(folder).Length;
        Assert.True(expected > 0, $"no sample folders in {folder}");

        var set = SampleSet.Open(folder, inputs);
        set.Validate();
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
}
