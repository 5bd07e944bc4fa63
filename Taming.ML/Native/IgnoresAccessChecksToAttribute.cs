namespace System.Runtime.CompilerServices;

/// <summary>
/// Tells the runtime that this assembly may use the internal members of the named assembly.
/// The runtime honours the attribute; the base class library does not define it.
/// </summary>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
internal sealed class IgnoresAccessChecksToAttribute(string assemblyName) : Attribute
{
    /// <summary>The assembly whose internals this one uses.</summary>
    public string AssemblyName { get; } = assemblyName;
}
