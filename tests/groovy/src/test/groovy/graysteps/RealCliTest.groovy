package graysteps

import org.junit.Before
import org.junit.Test

import java.nio.file.Files
import java.nio.file.Path

/**
 * The steps end to end, with no fake process: each recorded `sh` really runs under /bin/sh with the environment
 * the step built, so the real `graysteps` CLI (installed with `pip install -e .`) parses the JSON argument list,
 * fails on bad input, writes its error file into a real workspace, and the step turns it into `error "[step] …"`.
 */
class RealCliTest extends GraystepsPipelineTest {

    Path workspace
    StringBuilder output = new StringBuilder()

    @Before
    void realWorkspaceAndShell() {
        workspace = Files.createTempDirectory('graysteps-ws')
        helper.registerAllowedMethod('writeFile', [Map], { Map m ->
            Path path = workspace.resolve(m.file as String)
            Files.createDirectories(path.parent)
            path.text = m.text
        })
        helper.registerAllowedMethod('readFile', [Map], { Map m -> workspace.resolve(m.file as String).text })
        cli = { ShellCall call ->
            ProcessBuilder process = new ProcessBuilder('sh', '-c', call.script).directory(workspace.toFile()).redirectErrorStream(true)
            process.environment().putAll(call.env.findAll { k, v -> k != 'PATH' })
            Process running = process.start()
            output << running.inputStream.text
            return running.waitFor()
        }
    }

    @Test
    void aBadServiceNameStopsTheBuildWithTheClisOwnMessage() {
        Throwable failure = failureOf {
            step('grayRoute', [service: 'test-A', catalog: ROOT.resolve('examples/catalog.yaml').toString(), kubeconfigCredentialsId: null])
        }
        assert !output.toString().contains('command not found') : 'graysteps must be on PATH: pip install -e .'
        assert failure.message.startsWith("[grayRoute] service name 'test-A' is not allowed: Kubernetes names must be lowercase")
        assert failure.message.endsWith("did you mean 'test-a'?")
    }

    @Test
    void hostileValuesReachTheRealCliAsOneArgumentAndNothingRuns() {
        String hostile = 'x; touch pwned1 $(touch pwned2) `touch pwned3` ${HOME}'
        Throwable failure = failureOf {
            step('grayWhitelistSync', [source: hostile, dbCredentialsId: null])
        }
        assert failure.message == "[grayWhitelistSync] --source '${hostile}': no such file".toString()
        assert workspace.toFile().list().findAll { it.startsWith('pwned') } == []
        assert !ROOT.toFile().list().any { it.startsWith('pwned') }
    }
}
