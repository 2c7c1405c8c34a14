/**
 * Run the body with `graysteps` at this library's own version on PATH. Help: vars/grayEnv.txt
 *
 *   grayEnv { grayRoute(service: 'test-a', strategy: 'whitelist') }
 *
 * Installs into a workspace venv once per version (kept between builds), then prepends its bin/ to PATH.
 */
void call(Map args = [:], Closure body) {
    String version = libraryResource('io/graysteps/version.txt').trim()
    Map defaultConfig = [
        venv   : '.graysteps/venv',                             // venv directory, relative to the workspace
        python : 'python3',                                     // interpreter that creates the venv (3.11+)
        source : env.GRAYSTEPS_PIP_SOURCE ?: "graysteps==${version}", // pip requirement: a pinned version from the
                                                                // index (PIP_INDEX_URL), a git URL @tag, or a checkout
        version: version,                                       // the version `graysteps --version` must report
    ]
    Map config = graystepsRun.config('grayEnv', defaultConfig, args)
    String venv = pwd() + '/' + config.venv
    Map installEnv = [GRAYSTEPS_VENV: venv, GRAYSTEPS_PYTHON: config.python, GRAYSTEPS_PIP_SOURCE: config.source,
                      GRAYSTEPS_VERSION: config.version]
    withEnv(installEnv.collect { name, value -> graystepsRun.envEntry('grayEnv', name, value) }) {
        sh(label: 'grayEnv', script: libraryResource('io/graysteps/install-venv.sh'))
    }
    withEnv(['PATH+GRAYSTEPS=' + venv + '/bin']) {
        body()
    }
}
