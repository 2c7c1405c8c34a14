package graysteps

import org.junit.Test

/** grayEnv makes graysteps at the library's own version available on the agent, for its block only. */
class GrayEnvTest extends GraystepsPipelineTest {

    static final String VERSION = ROOT.resolve('resources/io/graysteps/version.txt').text.trim()
    static final String INSTALL = ROOT.resolve('resources/io/graysteps/install-venv.sh').text

    def runBlock(Map args) {
        binding.setVariable('envArgs', args)
        runScript(ROOT.resolve('tests/groovy/src/test/resources/gray-env-block.groovy').toString())
    }

    @Test
    void itInstallsTheLibrarysVersionIntoAWorkspaceVenvThenRunsTheBlockWithItOnPath() {
        runBlock([:])
        assert shellCalls*.script == [INSTALL, 'graysteps --version']
        Map install = shellCalls[0].env
        assert install.GRAYSTEPS_VENV == '/ws/.graysteps/venv'
        assert install.GRAYSTEPS_PIP_SOURCE == 'graysteps==' + VERSION
        assert install.GRAYSTEPS_VERSION == VERSION
        assert install.GRAYSTEPS_PYTHON == 'python3'
        assert shellCalls[1].env.PATH == '/ws/.graysteps/venv/bin:/usr/bin:/bin'
        assert env.PATH == '/usr/bin:/bin' && !env.containsKey('GRAYSTEPS_VENV')
    }

    @Test
    void theAdminsPipSourceOrAnExplicitOneIsUsed() {
        env.GRAYSTEPS_PIP_SOURCE = 'git+https://git.example.com/graysteps.git@v' + VERSION
        runBlock([:])
        runBlock([source: '.', venv: 'tools/venv', python: 'python3.11'])
        assert shellCalls[0].env.GRAYSTEPS_PIP_SOURCE == 'git+https://git.example.com/graysteps.git@v' + VERSION
        assert shellCalls[2].env.GRAYSTEPS_PIP_SOURCE == '.'
        assert shellCalls[2].env.GRAYSTEPS_PYTHON == 'python3.11'
        assert shellCalls[3].env.PATH.startsWith('/ws/tools/venv/bin:')
    }
}
