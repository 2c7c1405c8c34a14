/** Deploy a service's image to its prod or gray namespace. Help: vars/grayDeploy.txt */
void call(Map args = [:]) {
    Map defaultConfig = [
        service                : null,                   // catalog service, e.g. 'test-a' (required)
        env                    : 'gray',                 // prod | gray
        image                  : null,                   // image reference, e.g. the one grayBuild returns (required)
        replicas               : null,                   // replica count; null = the template's default
        wait                   : true,                   // follow the rollout like `kubectl rollout status`
        catalog                : null,                   // catalog file; null = $GRAYSTEPS_CATALOG, else ./catalog.yaml
        kubeconfigCredentialsId: 'graysteps-kubeconfig', // Jenkins "secret file" with the kubeconfig; null = agent's own
    ]
    Map config = graystepsRun.config('grayDeploy', defaultConfig, args, ['service', 'env', 'image'])
    List cli = ['deploy', '--service=' + config.service, '--env=' + config.env, '--image=' + config.image]
    if (config.replicas != null) { cli << '--replicas=' + config.replicas }
    if (config.wait) { cli << '--wait' }
    graystepsRun(step: 'grayDeploy', args: cli, config: config, env: [GRAYSTEPS_CATALOG: config.catalog],
                 credentials: [[type: 'file', id: 'kubeconfigCredentialsId', env: ['KUBECONFIG']]])
}
