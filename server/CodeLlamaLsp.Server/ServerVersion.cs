// The version that Nerdbank.GitVersioning stamps into the assembly, for --version and LSP serverInfo.
using System.Reflection;

namespace CodeLlamaLsp.Server;

internal static class ServerVersion
{
    /// <summary>SemVer with the git commit, e.g. "0.1.12+3f2a9c1".</summary>
    public static string Informational { get; } =
        typeof(ServerVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
}
