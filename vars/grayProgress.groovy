/** Run a progressive plan: one stage per schedule step, an input for each manual pause. Help: vars/grayProgress.txt */
void call(Map args = [:]) {
    Map defaultConfig = [
        plan                   : null,                    // progressive plan (YAML) in the workspace (required)
        prometheus             : null,                    // Prometheus URL; null = the plan's analysis.prometheus, else $GRAYSTEPS_PROMETHEUS
        istiod                 : null,                    // istiod's debug URL, e.g. 'http://istiod.istio-system:15014': each step
                                                          // is analysed once Istio serves it; null = $GRAYSTEPS_ISTIOD on the agent
        waitTimeout            : null,                    // seconds to wait for Istio before rolling back; null = graysteps' default (60)
        settle                 : '2s',                    // without istiod: wait this long after each change before counting
        approvers              : null,                    // who may approve a manual pause (input's submitter); null = anyone
        report                 : 'reports/progress.json', // each step's outcome as JSON; null = none
        catalog                : null,                    // catalog file; null = $GRAYSTEPS_CATALOG, else ./catalog.yaml
        kubeconfigCredentialsId: 'graysteps-kubeconfig',  // Jenkins "secret file" with the kubeconfig; null = agent's own
        dbCredentialsId        : 'graysteps-db',          // Jenkins "secret text": audit database URL (also the run's state)
        webhookCredentialsIds  : [:],                     // env var named by the plan's alerts[].urlEnv -> "secret text" id
    ]
    Map config = graystepsRun.config('grayProgress', defaultConfig, args, ['plan'])
    List common = ['--plan=' + config.plan]
    String scheduleFile = '.graysteps/grayProgress-schedule.json'
    graystepsRun(step: 'grayProgress', args: ['progress'] + common + ['--show', '--report=' + scheduleFile],
                 config: config, env: [GRAYSTEPS_CATALOG: config.catalog])
    Map schedule = parseSchedule(readFile(file: scheduleFile))
    if (config.prometheus) { common << '--prometheus=' + config.prometheus }
    common << '--settle=' + config.settle
    if (config.waitTimeout != null) { common << '--wait-timeout=' + config.waitTimeout }
    if (config.report) { common << '--report=' + config.report }
    List credentials = [[type: 'file', id: 'kubeconfigCredentialsId', env: ['KUBECONFIG']],
                        [type: 'string', id: 'dbCredentialsId', env: ['GRAYSTEPS_DB']]]
    Map withHooks = new LinkedHashMap(config)
    config.webhookCredentialsIds.each { String variable, String id ->
        withHooks['webhook:' + variable] = id
        credentials << [type: 'string', id: 'webhook:' + variable, env: [variable]]
    }
    int count = schedule.steps.size()
    schedule.steps.eachWithIndex { Map step, int i ->
        stage("Step ${i + 1}/${count}: ${step.label}") {
            try {
                graystepsRun(step: 'grayProgress', args: ['progress'] + common + ['--step=' + (i + 1)], config: withHooks,
                             env: [GRAYSTEPS_CATALOG: config.catalog, GRAYSTEPS_ISTIOD: config.istiod], credentials: credentials)
            } catch (Throwable failure) {
                // graysteps' own failure already rolled the plan back; an aborted build stopped it mid-step: roll back here
                if (!(failure.message ?: '').startsWith('[grayProgress]')) { rollBack(config, schedule) }
                throw failure
            }
        }
        if (step.pause == 'manual' && i + 1 < count) {
            stage("Approve step ${i + 2}/${count}") {
                try {
                    input(message: "Step ${i + 1} (${step.label}) passed its analysis. Go on to ${schedule.steps[i + 1].label}?",
                          ok: 'Go on', submitter: config.approvers)
                } catch (Throwable aborted) {  // "Abort" (or a timeout): take every service of the plan back to prod
                    rollBack(config, schedule)
                    throw aborted
                }
            }
        }
    }
}

/** Every service of the plan back to prod. */
void rollBack(Map config, Map schedule) {
    grayRollback(services: schedule.services, catalog: config.catalog, istiod: config.istiod, waitTimeout: config.waitTimeout,
                 kubeconfigCredentialsId: config.kubeconfigCredentialsId, dbCredentialsId: config.dbCredentialsId)
}

@NonCPS
static Map parseSchedule(String text) {
    return new groovy.json.JsonSlurperClassic().parseText(text) as Map
}
