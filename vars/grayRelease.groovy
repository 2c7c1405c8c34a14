/** Apply a release plan (several services and strategies) all-or-nothing. Help: vars/grayRelease.txt */
void call(Map args = [:]) {
    Map defaultConfig = [
        plan                   : null,                   // plan file (YAML) in the workspace (required)
        dryRun                 : false,                  // check every change with the apiserver's dry run; write nothing
        report                 : 'reports/release.json', // outcome as JSON; null = none
        junit                  : 'reports/release.xml',  // outcome as JUnit XML; null = none
        catalog                : null,                   // catalog file; null = $GRAYSTEPS_CATALOG, else ./catalog.yaml
        kubeconfigCredentialsId: 'graysteps-kubeconfig', // Jenkins "secret file" with the kubeconfig; null = agent's own
        dbCredentialsId        : 'graysteps-db',         // Jenkins "secret text": audit database URL; null = $GRAYSTEPS_DB/SQLite
    ]
    Map config = graystepsRun.config('grayRelease', defaultConfig, args, ['plan'])
    List cli = ['release', '--plan=' + config.plan]
    if (config.dryRun) { cli << '--dry-run' }
    if (config.report) { cli << '--report=' + config.report }
    if (config.junit) { cli << '--junit=' + config.junit }
    graystepsRun(step: 'grayRelease', args: cli, config: config, env: [GRAYSTEPS_CATALOG: config.catalog],
                 credentials: [[type: 'file', id: 'kubeconfigCredentialsId', env: ['KUBECONFIG']],
                               [type: 'string', id: 'dbCredentialsId', env: ['GRAYSTEPS_DB']]])
}
