// Runs the real codellama-lsp executable and checks that --version prints the Nerdbank version.
using System.Diagnostics;

namespace CodeLlamaLsp.Server.Tests;

public class VersionCommandTests
{
    [Test]
    public async Task Version_flag_prints_the_stamped_semver_and_exits_zero()
    {
        var (exitCode, stdout) = await ServerProcess.RunToEndAsync("--version");

        Assert.That(exitCode, Is.Zero);
        Assert.That(stdout.Trim(), Does.Match(@"^\d+\.\d+\.\d+(-[\w.]+)?\+[0-9a-f]{7,}$"));
        Assert.That(stdout.Trim(), Is.EqualTo(ServerVersion.Informational));
    }

    [Test]
    public async Task Unknown_command_exits_non_zero_with_usage_on_stderr()
    {
        var (exitCode, stdout) = await ServerProcess.RunToEndAsync("frobnicate");

        Assert.That(exitCode, Is.Not.Zero);
        Assert.That(stdout, Is.Empty);
    }
}
