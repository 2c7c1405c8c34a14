/** Verify a gray release (rollout, live route, probes); writes JUnit XML. Help: vars/grayVerify.txt */
void call(Map args = [:]) {
    Map defaultConfig = [
        service                : null,                   // catalog service, e.g. 'test-a' (required)
        gateway                : null,                   // gateway URL the probes go through; null = no probes
        grayCaller             : null,                   // URL whose requests leave as a gray workload (probes `linked`)
        junit                  : null,                   // JUnit XML report; null = reports/verify-<service>.xml
        rollbackOnFailure      : false,                  // on failure, roll the service back to prod, then fail
        catalog                : null,                   // catalog file; null = $GRAYSTEPS_CATALOG, else ./catalog.yaml
        kubeconfigCredentialsId: 'graysteps-kubeconfig', // Jenkins "secret file" with the kubeconfig; null = agent's own
    ]
    Map config = graystepsRun.config('grayVerify', defaultConfig, args, ['service'])
    List cli = ['verify', '--service=' + config.service, '--junit=' + (config.junit ?: "reports/verify-${config.service}.xml")]
    if (config.gateway) { cli << '--gateway=' + config.gateway }
    if (config.grayCaller) { cli << '--gray-caller=' + config.grayCaller }
    Map run = [step: 'grayVerify', args: cli, config: config, env: [GRAYSTEPS_CATALOG: config.catalog],
               credentials: [[type: 'file', id: 'kubeconfigCredentialsId', env: ['KUBECONFIG']]]]
    if (!config.rollbackOnFailure) { graystepsRun(run); return }
    try {
        graystepsRun(run)
    } catch (failure) {
        echo "grayVerify failed for ${config.service}: rolling it back to prod"
        grayRollback(services: [config.service], catalog: config.catalog, kubeconfigCredentialsId: config.kubeconfigCredentialsId)
        throw failure
    }
}
