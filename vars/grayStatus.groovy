/** Show each service's traffic strategy and its gray and prod versions; fails on routes changed by hand. Help: vars/grayStatus.txt */
void call(Map args = [:]) {
    Map defaultConfig = [
        services               : [],                     // only these catalog services, e.g. ['test-a']; [] = all
        report                 : 'reports/status.json',  // the rows as JSON; null = none
        catalog                : null,                   // catalog file; null = $GRAYSTEPS_CATALOG, else ./catalog.yaml
        kubeconfigCredentialsId: 'graysteps-kubeconfig', // Jenkins "secret file" with the kubeconfig; null = agent's own
    ]
    Map config = graystepsRun.config('grayStatus', defaultConfig, args)
    for (String name in config.services) {  // a value must never pass for a flag such as --json
        if (!(name ==~ /[a-z0-9]([-a-z0-9]*[a-z0-9])?/)) { error "[grayStatus] '${name}' is not a lowercase DNS-1123 name" }
    }
    List cli = ['status'] + (config.services ? ['--service'] + config.services : [])
    if (config.report) { cli << '--report=' + config.report }
    graystepsRun(step: 'grayStatus', args: cli, config: config, env: [GRAYSTEPS_CATALOG: config.catalog],
                 credentials: [[type: 'file', id: 'kubeconfigCredentialsId', env: ['KUBECONFIG']]])
}
