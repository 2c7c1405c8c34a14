/** Roll services back to prod (all traffic to prod), all of them or a chosen set. Help: vars/grayRollback.txt */
void call(Map args = [:]) {
    Map defaultConfig = [
        all                    : false,                  // every service graysteps manages
        services               : [],                     // or these catalog services, e.g. ['test-a', 'test-b']
        namespaces             : [],                     // only VirtualServices in these namespaces
        dryRun                 : false,                  // apiserver dry run; change nothing
        report                 : 'reports/rollback.json', // each service's outcome as JSON; null = none
        wait                   : true,                   // return only once Istio serves the change (not with dryRun)
        waitTimeout            : null,                   // seconds to wait before failing; null = graysteps' default (60)
        istiod                 : null,                   // istiod's debug URL, e.g. 'http://istiod.istio-system:15014';
                                                         // null = $GRAYSTEPS_ISTIOD on the agent
        catalog                : null,                   // catalog file; null = $GRAYSTEPS_CATALOG, else ./catalog.yaml
        kubeconfigCredentialsId: 'graysteps-kubeconfig', // Jenkins "secret file" with the kubeconfig; null = agent's own
        dbCredentialsId        : null,                   // Jenkins "secret text": audit database URL, e.g. 'graysteps-db';
                                                         // null = $GRAYSTEPS_DB if the agent has it, else no audit row
                                                         // (an emergency rollback must not need one more credential)
    ]
    Map config = graystepsRun.config('grayRollback', defaultConfig, args)
    if (config.all == !config.services.isEmpty()) { error '[grayRollback] give either all: true or services: [...], not both' }
    for (String name in config.services + config.namespaces) {  // a value must never pass for a flag such as --all
        if (!(name ==~ /[a-z0-9]([-a-z0-9]*[a-z0-9])?/)) { error "[grayRollback] '${name}' is not a lowercase DNS-1123 name" }
    }
    List cli = ['rollback'] + (config.all ? ['--all'] : ['--service'] + config.services)
    if (config.namespaces) { cli += ['--namespace'] + config.namespaces }
    if (config.dryRun) { cli << '--dry-run' }
    if (config.report) { cli << '--report=' + config.report }
    if (config.wait && !config.dryRun) {
        cli << '--wait'
        if (config.waitTimeout != null) { cli << '--wait-timeout=' + config.waitTimeout }
    }
    graystepsRun(step: 'grayRollback', args: cli, config: config, env: [GRAYSTEPS_CATALOG: config.catalog, GRAYSTEPS_ISTIOD: config.istiod],
                 credentials: [[type: 'file', id: 'kubeconfigCredentialsId', env: ['KUBECONFIG']],
                               [type: 'string', id: 'dbCredentialsId', env: ['GRAYSTEPS_DB']]])
}
