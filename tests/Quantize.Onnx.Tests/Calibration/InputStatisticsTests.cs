using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Calibration;

namespace Quantize.Onnx.Tests.Calibration;

/// <summary>Sanity warnings on calibration inputs: constant samples (QNT2101) and samples far outside the others (QNT2102).</summary>
public sealed class InputStatisticsTests
{
    private static void Add(InputStatistics stats, string source, params float[] values) =>
        stats.Add("x", source, TensorElementType.Float, MemoryMarshal.AsBytes(values.AsSpan()));

    [Fact]
    public void Samples_in_one_range_give_no_warning()
    {
        var stats = new InputStatistics();
        for (int i = 0; i < 6; i++)
        {
            Add(stats, $"s{i}", 0.01f * i, 0.5f, 0.9f + (0.01f * i));
        }

        Assert.Empty(stats.Warnings("set"));
        Assert.Equal(6, stats.RangesOf("x").Count);
    }

    [Fact]
    public void A_constant_sample_is_QNT2101_naming_it()
    {
        var stats = new InputStatistics();
        Add(stats, "ok", 0, 1);
        Add(stats, "blank", 0, 0, 0);

        var warning = Assert.Single(stats.Warnings("set 'cal'"));

        Assert.Equal(ErrorCodes.CalibrationInputConstant, warning.Code);
        Assert.Equal("blank", warning.File);
        Assert.Contains("1 of 2", warning.Message);
    }

    [Fact]
    public void An_input_constant_in_every_sample_is_not_suspicious()
    {
        var stats = new InputStatistics();
        stats.Add("sr", "a", TensorElementType.Int64, BitConverter.GetBytes(16000L));
        stats.Add("sr", "b", TensorElementType.Int64, BitConverter.GetBytes(16000L));

        Assert.Empty(stats.Warnings("set"));
    }

    [Fact]
    public void A_sample_scaled_0_to_255_among_samples_in_0_to_1_is_QNT2102()
    {
        var stats = new InputStatistics();
        for (int i = 0; i < 5; i++)
        {
            Add(stats, $"s{i}", 0, 0.5f, 1);
        }

        Add(stats, "raw", 0, 128, 255);

        var warning = Assert.Single(stats.Warnings("set"));
        Assert.Equal(ErrorCodes.CalibrationRangeOutlier, warning.Code);
        Assert.Equal("raw", warning.File);
        Assert.Contains("[0, 255]", warning.Message);
        Assert.Contains("typical range [0, 1]", warning.Message);
    }

    [Fact]
    public void A_sample_in_0_to_1_among_samples_in_0_to_255_is_QNT2102()
    {
        var stats = new InputStatistics();
        for (int i = 0; i < 5; i++)
        {
            Add(stats, $"s{i}", 0, 100, 255);
        }

        Add(stats, "scaled", 0, 0.5f, 1);

        Assert.Equal("scaled", Assert.Single(stats.Warnings("set")).File);
    }

    [Fact]
    public void Too_few_samples_give_no_outlier_warning()
    {
        var stats = new InputStatistics();
        Add(stats, "a", 0, 1);
        Add(stats, "b", 0, 255);

        Assert.Empty(stats.Warnings("set"));
    }
}
