using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Tests.Model;

public sealed class ProvenanceTests
{
    [Fact]
    public void Stamp_writes_tool_version_and_sorted_settings_and_keeps_other_metadata()
    {
        var model = ModelTestKit.MatMulModel();
        model.MetadataProps.Add(new StringStringEntryProto { Key = "license", Value = "MIT" });

        Provenance.Stamp(model, "1.2.3", new Dictionary<string, string> { ["weights"] = "int8", ["activations"] = "uint8", ["Calibration"] = "minmax" });

        Assert.Equal(
            [("author", "tests"), ("license", "MIT"), ("quantize.tool", "Quantize.Onnx"), ("quantize.version", "1.2.3"),
             ("quantize.settings", "{\"Calibration\":\"minmax\",\"activations\":\"uint8\",\"weights\":\"int8\"}")],
            model.MetadataProps.Select(p => (p.Key, p.Value)));
    }

    [Fact]
    public void Stamping_again_replaces_the_earlier_values()
    {
        var model = ModelTestKit.MatMulModel();
        model.MetadataProps.Add(new StringStringEntryProto { Key = Provenance.VersionKey, Value = "0.0.1" });
        model.MetadataProps.Add(new StringStringEntryProto { Key = Provenance.VersionKey, Value = "0.0.2" });
        Provenance.Stamp(model, "1.0", new Dictionary<string, string> { ["a"] = "1" });
        Provenance.Stamp(model, "2.0", new Dictionary<string, string> { ["b"] = "2" });

        Assert.Single(model.MetadataProps, p => p.Key == Provenance.ToolKey);
        Assert.Equal("2.0", Assert.Single(model.MetadataProps, p => p.Key == Provenance.VersionKey).Value);
        Assert.Equal("{\"b\":\"2\"}", Assert.Single(model.MetadataProps, p => p.Key == Provenance.SettingsKey).Value);
        Assert.Equal("author", model.MetadataProps[0].Key);
    }

    [Fact]
    public void Canonical_settings_do_not_depend_on_insertion_order()
    {
        var one = new Dictionary<string, string> { ["x"] = "a\"b", ["y"] = "π;=" };
        var two = new Dictionary<string, string> { ["y"] = "π;=", ["x"] = "a\"b" };

        Assert.Equal(Provenance.CanonicalSettings(one), Provenance.CanonicalSettings(two));
    }

    [Fact]
    public void Canonical_settings_are_a_json_object_with_quotes_escaped()
    {
        var one = new Dictionary<string, string> { ["x"] = "a\"b", ["y"] = "π;=" };

        Assert.Equal("{\"x\":\"a\\\"b\",\"y\":\"π;=\"}", Provenance.CanonicalSettings(one));
        Assert.Equal("{}", Provenance.CanonicalSettings(new Dictionary<string, string>()));
    }

    [Fact]
    public void Stamped_model_round_trips_through_save_and_load()
    {
        using var folder = new TempFolder();
        var model = ModelTestKit.MatMulModel();
        Provenance.Stamp(model, "0.1.0", new Dictionary<string, string> { ["mode"] = "static" });
        ModelWriter.Save(model, folder.File("m.onnx"));

        Assert.Equal(model.MetadataProps, ModelLoader.Load(folder.File("m.onnx")).MetadataProps);
    }
}
