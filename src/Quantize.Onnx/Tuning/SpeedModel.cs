namespace Quantize.Onnx.Tuning;

/// <summary>
/// Predicts a float set's INT8-vs-FP32 speed-up before it is built: the run time moves linearly from the measured
/// all-INT8 time to the FP32 time with the share of the units' multiply-accumulates kept float. On waifu2x (seven
/// 3×3 convs) its median error over 90 timed float sets was 5 % (on a loaded machine): a conv net's time is its
/// convolutions' MACs, float or integer, and the Q/DQ pairs at float boundaries are cheap next to them. The two end
/// points are what the search measures anyway: FP32 and the configuration the float set is added to.
/// </summary>
/// <param name="Int8Speedup">Measured speed-up of the configuration with every unit quantized.</param>
/// <param name="UnitCost">Multiply-accumulates of all float-unit candidates together.</param>
internal sealed record SpeedModel(double Int8Speedup, double UnitCost)
{
    /// <summary>The speed-up expected when units costing <paramref name="floatCost"/> MACs run in float.</summary>
    public double Predict(double floatCost)
    {
        if (Int8Speedup <= 0 || UnitCost <= 0)
        {
            return Int8Speedup;
        }

        // Time in units of the FP32 time: INT8 part 1/s, plus the float share's difference back to FP32's time.
        var share = Math.Clamp(floatCost / UnitCost, 0, 1);
        var int8Time = 1 / Int8Speedup;
        return 1 / (int8Time + (share * (1 - int8Time)));
    }
}
