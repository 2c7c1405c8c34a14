import groovy.json.JsonOutput
import groovy.json.JsonSlurperClassic

/**
 * The one runner behind every gray* step (after Piper's piperExecuteBin).
 *
 *   graystepsRun(step: 'grayRoute', args: ['route', '--service=test-a'], env: [GRAYSTEPS_CATALOG: 'catalog.yaml'],
 *                credentials: [[type: 'file', id: 'kubeconfigCredentialsId', env: ['KUBECONFIG']]], config: config)
 *
 * Values travel as DATA: the argument list goes into ONE JSON env var and the shell script is a constant.
 * Credentials are bound by withCredentials from the ids in `config`; a null id binds nothing.
 * On failure the CLI writes {"step","message","type"} to $GRAYSTEPS_ERROR_FILE; it becomes `error "[step] message"`.
 */
void call(Map run) {
    String step = run.step
    List args = run.args
    int missing = args.findIndexOf { it == null }
    if (missing >= 0) {
        error "[${step}] ${missing > 0 ? args[missing - 1] : 'the command'} needs a value; see vars/${step}.txt"
    }
    String errorFile = ".graysteps/${step}-error.json"
    // withEnv expands $VAR/${VAR} in values, so '$' travels as the JSON escape \u0024 and graysteps decodes it back
    List envList = ['GRAYSTEPS_ARGS=' + JsonOutput.toJson(args.collect { it.toString() }).replace('$', '\\u0024'),
                    'GRAYSTEPS_ERROR_FILE=' + errorFile]
    (run.env ?: [:]).each { name, value -> if (value != null) { envList << envEntry(step, name, value) } }
    writeFile file: errorFile, text: ''
    int status = 0
    withEnv(envList) {
        withCredentials(credentialBindings(step, run.config ?: [:], run.credentials ?: [])) {
            status = sh(script: 'graysteps --args-json-env GRAYSTEPS_ARGS', returnStatus: true, label: step)
        }
    }
    if (status != 0) {
        error "[${step}] ${errorMessage(readFile(file: errorFile), status)}"
    }
}

/** NAME=value for withEnv; a '$' would be expanded by Jenkins, so it is refused rather than silently changed. */
String envEntry(String step, String name, def value) {
    if (value.toString().contains('$')) { error "[${step}] ${name} must not contain '\$' (Jenkins' withEnv would expand it)" }
    return name + '=' + value
}

/** Merge user args over the documented defaults; an unknown key (a typo) or a missing required one stops the build. */
Map config(String step, Map defaultConfig, Map args, List required = []) {
    Set unknown = args.keySet() - defaultConfig.keySet()
    if (unknown) {
        error "[${step}] unknown parameter(s) ${unknown.sort().join(', ')}; allowed: ${defaultConfig.keySet().sort().join(', ')}"
    }
    Map config = defaultConfig + args
    List missing = required.findAll { config[it] == null || config[it] == '' }
    if (missing) { error "[${step}] ${missing.join(', ')} required; see vars/${step}.txt" }
    return config
}

/** [type, id, env] credential declarations → withCredentials bindings (ids are looked up in the config). */
List credentialBindings(String step, Map config, List declarations) {
    List bindings = []
    for (Map c in declarations) {
        String id = config[c.id]
        if (!id) { continue }
        switch (c.type) {
            case 'file': bindings << file(credentialsId: id, variable: c.env[0]); break
            case 'string': bindings << string(credentialsId: id, variable: c.env[0]); break
            case 'usernamePassword':
                bindings << usernamePassword(credentialsId: id, usernameVariable: c.env[0], passwordVariable: c.env[1]); break
            default: error "[${step}] unknown credential type ${c.type}"
        }
    }
    return bindings
}

@NonCPS
static String errorMessage(String details, int status) {
    if (!details?.trim()) {
        return "graysteps exited with status ${status}; see the log above".toString()
    }
    Map parsed = new JsonSlurperClassic().parseText(details) as Map
    return parsed.message ?: "graysteps exited with status ${status}".toString()
}
