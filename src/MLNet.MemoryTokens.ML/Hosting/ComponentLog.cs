using Microsoft.ML.Runtime;

namespace MLNet.MemoryTokens.ML.Hosting;

/// <summary>Messages of one component run, written to <c>MLContext.Log</c> through a public <see cref="IChannel"/>
/// (source name <c>MLNet.MemoryTokens; &lt;component&gt;</c>). Without an environment it discards everything.</summary>
internal sealed class ComponentLog : IDisposable
{
    public const string HostName = "MLNet.MemoryTokens";
    readonly IChannel? _channel;

    public ComponentLog(IHostEnvironment? env, string component)
    {
        _channel = env?.Register(HostName).Start(component);
    }

    public void Info(string message) => _channel?.Info(MessageSensitivity.None, message);
    public void Trace(string message) => _channel?.Trace(MessageSensitivity.None, message);
    public void Warning(string message) => _channel?.Warning(MessageSensitivity.None, message);

    public void Dispose() => _channel?.Dispose();
}
