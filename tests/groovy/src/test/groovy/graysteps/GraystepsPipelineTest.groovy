package graysteps

import com.lesfurets.jenkins.unit.BasePipelineTest
import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import org.junit.Before

import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.Paths

import static com.lesfurets.jenkins.unit.global.lib.LibraryConfiguration.library
import static com.lesfurets.jenkins.unit.global.lib.LocalSource.localSource

/**
 * The Jenkins steps mocked once, for every test (after jenkins-infra's BaseTest), on JenkinsPipelineUnit 1.1.
 *
 * The library is loaded from this checkout as `graysteps`. `sh` is recorded with the environment it would see
 * (a JenkinsShellCallRule-like recorder); withEnv/withCredentials really change that environment for their block;
 * writeFile/readFile use an in-memory workspace. `cli` decides how the fake `graysteps` process ends: return an
 * exit status, and write `failWith(...)` to simulate the CLI's error file.
 */
abstract class GraystepsPipelineTest extends BasePipelineTest {

    public static final Path ROOT = Paths.get(System.getProperty('graysteps.root', '../..')).toAbsolutePath().normalize()
    static final String WORKSPACE = '/ws'

    /** One recorded `sh`: its script, the environment it ran with, and the graysteps argv it carried. */
    static class ShellCall {
        String script
        Map<String, String> env
        Map options
        List<String> getCliArgs() { env.GRAYSTEPS_ARGS ? new JsonSlurper().parseText(env.GRAYSTEPS_ARGS) as List<String> : null }
        String getCommand() { cliArgs ? (cliArgs[0] == 'whitelist' ? 'whitelist ' + cliArgs[1] : cliArgs[0]) : null }
    }

    static class PipelineError extends RuntimeException {
        PipelineError(String message) { super(message) }
    }

    List<ShellCall> shellCalls = []
    List<List> credentialBlocks = []
    List<String> events = []           // stages, locks, inputs and graysteps commands, in order
    Map<String, String> files = [:]
    Map<String, String> env = [:]
    Closure cli = { ShellCall call -> 0 }

    @Before
    @Override
    void setUp() throws Exception {
        Path libs = Files.createTempDirectory('graysteps-libs')
        Files.createSymbolicLink(libs.resolve('graysteps@master'), ROOT)
        scriptRoots = [ROOT.toString()] as String[]
        scriptExtension = ''
        super.setUp()
        helper.registerSharedLibrary(library().name('graysteps').defaultVersion('master').allowOverride(true)
                .implicit(false).targetPath(libs.toString()).retriever(localSource(libs.toString())).build())
        env.putAll([WORKSPACE: WORKSPACE, BUILD_NUMBER: '42', BUILD_TAG: 'jenkins-whitelist-sync-42', PATH: '/usr/bin:/bin', GRAYSTEPS_REGISTRY: 'registry.example.com'])
        binding.setVariable('env', env)
        binding.setVariable('params', [:])
        binding.setVariable('scm', [userRemoteConfigs: [[url: 'https://git.example.com/shop.git']]])
        registerSteps()
    }

    void registerSteps() {
        helper.registerAllowedMethod('sh', [Map], { Map options -> runShell(options) })
        helper.registerAllowedMethod('sh', [String], { String script -> runShell([script: script]) })
        helper.registerAllowedMethod('withEnv', [List, Closure], { List vars, Closure body -> withEnvironment(vars, body) })
        helper.registerAllowedMethod('withCredentials', [List, Closure], { List bindings, Closure body -> bindCredentials(bindings, body) })
        helper.registerAllowedMethod('file', [Map], { Map m -> [type: 'file'] + m })
        helper.registerAllowedMethod('string', [Map], { Map m -> [type: 'string'] + m })
        helper.registerAllowedMethod('usernamePassword', [Map], { Map m -> [type: 'usernamePassword'] + m })
        helper.registerAllowedMethod('writeFile', [Map], { Map m -> files[m.file as String] = m.text as String })
        helper.registerAllowedMethod('readFile', [Map], { Map m -> readWorkspaceFile(m.file as String) })
        helper.registerAllowedMethod('pwd', [], { WORKSPACE })
        helper.registerAllowedMethod('libraryResource', [String], { String path -> ROOT.resolve('resources').resolve(path).text })
        helper.registerAllowedMethod('error', [String], { String message -> throw new PipelineError(message) })
        helper.registerAllowedMethod('stage', [String, Closure], { String name, Closure body -> events << 'stage ' + name; body() })
        helper.registerAllowedMethod('lock', [Map, Closure], { Map m, Closure body ->
            events << 'lock ' + m.resource
            try { body() } finally { events << 'unlock ' + m.resource }
        })
        helper.registerAllowedMethod('input', [Map], { Map m -> events << 'input ' + m.message })
        helper.registerAllowedMethod('checkout', [Map], { Map m -> events << 'checkout'; [GIT_COMMIT: '0123456789abcdef0123456789abcdef01234567'] })
        helper.registerAllowedMethod('junit', [Map], { Map m -> events << 'junit ' + m.testResults })
        helper.registerAllowedMethod('archiveArtifacts', [Map], { Map m -> events << 'archive ' + m.artifacts })
        helper.registerAllowedMethod('properties', [List], { List l -> binding.setVariable('jobProperties', l) })  // must stay unused
    }

    def runShell(Map options) {
        ShellCall call = new ShellCall(script: options.script, env: new LinkedHashMap(env), options: options)
        shellCalls << call
        if (call.command) { events << 'graysteps ' + call.command }
        int status = cli(call) as int
        if (status != 0 && !options.returnStatus) { throw new PipelineError("script returned exit code ${status}") }
        return options.returnStatus ? status : null
    }

    def withEnvironment(List vars, Closure body) {
        Map saved = new LinkedHashMap(env)
        vars.each { String entry ->
            String name = entry.substring(0, entry.indexOf('='))
            String value = entry.substring(entry.indexOf('=') + 1)
            if (name.contains('+')) {  // PATH+X=dir prepends, as Jenkins does
                name = name.substring(0, name.indexOf('+'))
                value = value + ':' + env[name]
            }
            env[name] = value
        }
        try { return body() } finally { env.clear(); env.putAll(saved) }
    }

    /** Binds each credential to a recognisable fake secret, for the block only. */
    def bindCredentials(List bindings, Closure body) {
        credentialBlocks << bindings
        List vars = bindings.collectMany { Map b ->
            switch (b.type) {
                case 'file': return [b.variable + '=/secrets/' + b.credentialsId]
                case 'string': return [b.variable + '=secret-' + b.credentialsId]
                default: return [b.usernameVariable + '=user-' + b.credentialsId, b.passwordVariable + '=secret-' + b.credentialsId]
            }
        }
        return withEnvironment(vars, body)
    }

    String readWorkspaceFile(String path) {
        if (!files.containsKey(path)) { throw new PipelineError("readFile: no such file ${path}") }
        return files[path]
    }

    /** For `cli`: make the fake graysteps fail the way the real one does (error file + exit status). */
    int failWith(ShellCall call, String message, int status = 1) {
        files[call.env.GRAYSTEPS_ERROR_FILE] = JsonOutput.toJson([step: call.command, message: message, type: 'GraystepsError'])
        return status
    }

    /** Run a library step the way a Jenkinsfile does: through the library, by its global name. */
    def step(String name, Map args = [:]) {
        Script script = helper.loadScript(ROOT.resolve('tests/groovy/src/test/resources/call-step.groovy').toString(), binding)
        binding.setVariable('stepName', name)
        binding.setVariable('stepArgs', args)
        return script.run()
    }

    Throwable failureOf(Closure body) {
        try { body() } catch (Throwable t) { return t }
        throw new AssertionError('expected the build to fail, but it passed')
    }

    List<String> commands() { shellCalls.findAll { it.command }.collect { it.command } }
}
