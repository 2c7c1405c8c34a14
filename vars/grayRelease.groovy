/** Apply a release plan (several services and strategies) all-or-nothing. Help: vars/grayRelease.txt */
void call(Map args = [:]) {
    Map defaultConfig = [
        plan                   : null,                   // plan file (YAML) in the workspace (required)
        dryRun                 : false,                  // check every change with the apiserver's dry run; write nothing
        report                 : 'reports/release.json', // outcome as JSON; null = none
        junit                  : 'reports/release.xml',  // outcome as JUnit XML; null = none
        wait                   : true,                   // return only once Istio serves the change (not with dryRun)
        waitTimeout            : null,                   // seconds to wait before failing; null = graysteps' default (60)
        istiod                 : null,                   // istiod's debug URL, e.g. 'http://istiod.istio-system:15014';
                                                         // null = $GRAYSTEPS_ISTIOD on the agent
        catalog                : null,                   // catalog file; null = $GRAYSTEPS_CATALOG, else ./catalog.yaml
        kubeconfigCredentialsId: 'graysteps-kubeconfig', // Jenkins "secret file" with the kubeconfig; null = agent's own
        dbCredentialsId        : 'graysteps-db',         // Jenkins "secret text": audit database URL; null = $GRAYSTEPS_DB/SQLite
    ]
    Map config = graystepsRun.config('grayRelease', defaultConfig, args, ['plan'])
    List cli = ['release', '--plan=' + config.plan]
    if (config.dryRun) { cli << '--dry-run' }
    if (config.report) { cli << '--report=' + config.report }
    if (config.junit) { cli << '--junit=' + config.junit }
    if (config.wait && !config.dryRun) {
        cli << '--wait'
        if (config.waitTimeout != null) { cli << '--wait-timeout=' + config.waitTimeout }
    }
    graystepsRun(step: 'grayRelease', args: cli, config: config, env: [GRAYSTEPS_CATALOG: config.catalog, GRAYSTEPS_ISTIOD: config.istiod],
                 credentials: [[type: 'file', id: 'kubeconfigCredentialsId', env: ['KUBECONFIG']],
                               [type: 'string', id: 'dbCredentialsId', env: ['GRAYSTEPS_DB']]])
}
