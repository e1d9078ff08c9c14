using Google.Protobuf;
using Quantize.Onnx.Model;

namespace Quantize.Onnx.Tests.Model;

/// <summary>The real models of ../shared/corpus (when present) survive a parse/serialize round trip byte for byte.</summary>
public sealed class CorpusRoundTripTests
{
    private const string CorpusFolder = "/work/shared/corpus";

    public static TheoryData<string> Models()
    {
        var data = new TheoryData<string>();
        if (Directory.Exists(CorpusFolder))
        {
            foreach (string file in Directory.EnumerateFiles(CorpusFolder, "*.onnx", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            {
                data.Add(Path.GetRelativePath(CorpusFolder, file));
            }
        }

        if (data.Count == 0)
        {
            data.Add(string.Empty); // no corpus here: one test that passes without checking anything
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Corpus_model_round_trips_byte_identically(string relativePath)
    {
        if (relativePath.Length == 0)
        {
            return;
        }

        string path = Path.Combine(CorpusFolder, relativePath);
        byte[] original = File.ReadAllBytes(path);

        Assert.Equal(original, ModelLoader.Parse(original, relativePath).ToByteArray());

        using var folder = new TempFolder();
        ModelWriter.Save(ModelLoader.Load(path), folder.File("copy.onnx"));
        Assert.Equal(original, File.ReadAllBytes(folder.File("copy.onnx")));
    }
}
