using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Taming.ML.Sampling;

namespace Taming.ML.MLNet;

/// <summary>Generates token grids with a fitted prior; nothing is trained, so <see cref="Fit"/> only checks the data.</summary>
public sealed class TokenGeneratorEstimator : IEstimator<TokenGeneratorTransformer>
{
    private readonly Func<TokenGeneratorTransformer> make;
    private readonly string outputColumnName;
    private readonly PriorTransformer prior;

    internal TokenGeneratorEstimator(IHostEnvironment env, PriorTransformer prior, string outputColumnName,
        string? labelColumnName, string? conditionColumnName, string? seedColumnName, SamplingOptions options)
    {
        this.prior = prior;
        this.outputColumnName = outputColumnName;
        make = () => new TokenGeneratorTransformer(env, prior, outputColumnName, labelColumnName, conditionColumnName, seedColumnName, options);
    }

    /// <summary>Describes the token column that will be added.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var result = inputSchema.ToDictionary(c => c.Name);
        result[outputColumnName] = TokenColumns.Shape(outputColumnName);
        return new SchemaShape(result.Values);
    }

    /// <summary>Returns the generation transformer after checking the condition columns.</summary>
    public TokenGeneratorTransformer Fit(IDataView input)
    {
        var transformer = make();
        transformer.GetOutputSchema(input.Schema);
        return transformer;
    }
}
