using Quantize.Onnx.Quantization;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx.Tuning;

/// <summary>
/// Every unit, ranked by the damage it does on its own per unit of compute keeping it float takes back from the
/// integer kernels, most damage per cost first. A unit's own damage is measured with only that unit quantized
/// (all other units float): quantization noise of the units roughly adds up at the output, and measured this way
/// a unit's share is not masked by the others' (keeping one unit float among many noisy ones hardly moves the
/// metric). Cheap sensitive layers (a model's stem and head) come first, so the float set costs little speed.
/// On big models only the units the per-layer analysis ranks worst are measured; the others follow, cheapest first.
/// </summary>
internal static class UnitRanking
{
    /// <summary>At most this many float candidates are measured one by one.</summary>
    public const int MeasuredUnits = 16;

    public static (List<string[]> Ranked, Dictionary<string[], double> Damage) Rank(
        ITuningSource source, AttemptLog log, QuantizationOptions recipe, IReadOnlyList<string[]> units, Candidate reference, ValidationReport referenceValidation)
    {
        var shortlist = units;
        if (units.Count > MeasuredUnits)
        {
            // Too many to measure: the per-layer analysis (dB each layer loses) picks the ones worth measuring.
            var loss = source.LayerLoss(reference, referenceValidation);
            shortlist = [.. units.OrderByDescending(u => u.Max(n => loss.GetValueOrDefault(n, double.NegativeInfinity))).Take(MeasuredUnits)];
        }

        var everyNode = units.SelectMany(u => u).ToList();
        var damage = new Dictionary<string[], double>(ReferenceEqualityComparer.Instance);
        foreach (var unit in shortlist)
        {
            if (log.OutOfBudget)
            {
                break;
            }

            var others = everyNode.Except(unit, StringComparer.Ordinal).ToList();
            var (_, validation) = log.Try($"damage of {string.Join("+", unit)} alone", recipe.WithFloatNodes(others), others, probe: true);
            damage[unit] = CheckScores.Damage(validation);
        }

        return ([.. units.OrderByDescending(u => damage.TryGetValue(u, out var d) ? d / log.Cost(u) : double.NegativeInfinity).ThenBy(log.Cost)], damage);
    }
}
