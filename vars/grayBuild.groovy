/** Build a service image (and push it); returns the image reference for grayDeploy. Help: vars/grayBuild.txt */
String call(Map args = [:]) {
    Map defaultConfig = [
        service              : null,                     // catalog service, e.g. 'test-a' (required)
        context              : '.',                      // build context directory in the workspace
        dockerfile           : null,                     // Dockerfile; null = <context>/Dockerfile
        tag                  : null,                     // image tag, e.g. 'b42' or a short commit (required)
        registry             : null,                     // registry host[:port]; null = no registry prefix
        push                 : true,                     // push to the registry after the build
        dockerHost           : null,                     // Docker API endpoint (DOCKER_HOST); null = the agent's default
        catalog              : null,                     // catalog file; null = $GRAYSTEPS_CATALOG, else ./catalog.yaml
        registryCredentialsId: 'graysteps-registry',     // Jenkins "username with password" for the registry; null = none
    ]
    Map config = graystepsRun.config('grayBuild', defaultConfig, args, ['service', 'context', 'tag'])
    List cli = ['build', '--service=' + config.service, '--context=' + config.context, '--tag=' + config.tag]
    if (config.dockerfile) { cli << '--dockerfile=' + config.dockerfile }
    if (config.registry) { cli << '--registry=' + config.registry }
    if (config.push) { cli << '--push' }
    graystepsRun(step: 'grayBuild', args: cli, config: config,
                 env: [GRAYSTEPS_CATALOG: config.catalog, DOCKER_HOST: config.dockerHost],
                 credentials: [[type: 'usernamePassword', id: 'registryCredentialsId',
                                env: ['REGISTRY_USER', 'REGISTRY_PASSWORD']]])
    return (config.registry ? config.registry + '/' : '') + config.service + ':' + config.tag
}
