/** Point a service's traffic at a strategy. Help: vars/grayRoute.txt */
void call(Map args = [:]) {
    Map defaultConfig = [
        service                : null,                   // catalog service, e.g. 'test-a' (required)
        strategy               : 'whitelist',            // whitelist | weight | balanced | linked | promote | rollback
        weight                 : null,                   // gray share 0-100, only with strategy 'weight'
        dryRun                 : false,                  // print the diff, change nothing (apiserver dry run)
        createSubsets          : false,                  // subsets layout: add a missing prod/gray subset to the
                                                         // DestinationRule (never renames or removes one)
        wait                   : true,                   // return only once Istio serves the change (not with dryRun)
        waitTimeout            : null,                   // seconds to wait before failing; null = graysteps' default (60)
        istiod                 : null,                   // istiod's debug URL, e.g. 'http://istiod.istio-system:15014';
                                                         // null = $GRAYSTEPS_ISTIOD on the agent
        catalog                : null,                   // catalog file; null = $GRAYSTEPS_CATALOG, else ./catalog.yaml
        kubeconfigCredentialsId: 'graysteps-kubeconfig', // Jenkins "secret file" with the kubeconfig; null = agent's own
    ]
    Map config = graystepsRun.config('grayRoute', defaultConfig, args, ['service', 'strategy'])
    List cli = ['route', '--service=' + config.service, '--strategy=' + config.strategy]
    if (config.weight != null) { cli << '--weight=' + config.weight }
    if (config.dryRun) { cli << '--dry-run' }
    if (config.createSubsets) { cli << '--create-subsets' }
    if (config.wait && !config.dryRun) {
        cli << '--wait'
        if (config.waitTimeout != null) { cli << '--wait-timeout=' + config.waitTimeout }
    }
    graystepsRun(step: 'grayRoute', args: cli, config: config, env: [GRAYSTEPS_CATALOG: config.catalog, GRAYSTEPS_ISTIOD: config.istiod],
                 credentials: [[type: 'file', id: 'kubeconfigCredentialsId', env: ['KUBECONFIG']]])
}
