package graysteps

import org.junit.Test

/** The exact command, environment and credentials each step produces (Piper's KubernetesDeployTest, for graysteps). */
class StepsTest extends GraystepsPipelineTest {

    static final String SCRIPT = 'graysteps --args-json-env GRAYSTEPS_ARGS'

    ShellCall onlyCall() {
        assert shellCalls.size() == 1
        assert shellCalls[0].script == SCRIPT
        assert shellCalls[0].options.returnStatus == true
        return shellCalls[0]
    }

    @Test
    void grayRoutePassesServiceStrategyAndWeightAsJsonWithTheKubeconfigBound() {
        step('grayRoute', [service: 'test-a', strategy: 'weight', weight: 20])
        ShellCall call = onlyCall()
        assert call.env.GRAYSTEPS_ARGS == '["route","--service=test-a","--strategy=weight","--weight=20","--wait"]'
        assert call.env.GRAYSTEPS_ERROR_FILE == '.graysteps/grayRoute-error.json'
        assert call.env.KUBECONFIG == '/secrets/graysteps-kubeconfig'
        assert !call.env.containsKey('GRAYSTEPS_CATALOG')
        assert credentialBlocks == [[[type: 'file', credentialsId: 'graysteps-kubeconfig', variable: 'KUBECONFIG']]]
    }

    @Test
    void grayRouteDefaultsToWhitelistAndPassesDryRunAndCatalog() {
        step('grayRoute', [service: 'test-b', dryRun: true, catalog: 'ops/catalog.yaml', kubeconfigCredentialsId: 'kube-stage'])
        ShellCall call = onlyCall()
        assert call.cliArgs == ['route', '--service=test-b', '--strategy=whitelist', '--dry-run']
        assert call.env.GRAYSTEPS_CATALOG == 'ops/catalog.yaml'
        assert call.env.KUBECONFIG == '/secrets/kube-stage'
    }

    @Test
    void grayRouteRollbackAndReleaseWaitForIstioByDefaultWithTheTimeoutAndIstiodAsData() {
        step('grayRoute', [service: 'test-a', waitTimeout: 90, istiod: 'http://istiod.istio-system:15014'])
        step('grayRollback', [all: true, wait: false])
        step('grayRelease', [plan: 'p.yaml', dryRun: true, report: null, junit: null])
        assert shellCalls*.cliArgs == [
            ['route', '--service=test-a', '--strategy=whitelist', '--wait', '--wait-timeout=90'],
            ['rollback', '--all', '--report=reports/rollback.json'],
            ['release', '--plan=p.yaml', '--dry-run'],  // a dry run writes nothing: nothing to wait for
        ]
        assert shellCalls[0].env.GRAYSTEPS_ISTIOD == 'http://istiod.istio-system:15014'
        assert !shellCalls[1].env.containsKey('GRAYSTEPS_ISTIOD')  // null: the agent's own, if any
    }

    @Test
    void grayRouteCreatesAMissingSubsetOnlyWhenAsked() {
        step('grayRoute', [service: 'reviews', createSubsets: true, wait: false])
        step('grayRoute', [service: 'reviews', wait: false])
        assert shellCalls*.cliArgs == [
            ['route', '--service=reviews', '--strategy=whitelist', '--create-subsets'],
            ['route', '--service=reviews', '--strategy=whitelist'],
        ]
    }

    @Test
    void grayRouteWithoutCredentialsIdBindsNothingAndUsesTheAgentsKubeconfig() {
        step('grayRoute', [service: 'test-a', kubeconfigCredentialsId: null])
        assert onlyCall().env.KUBECONFIG == null
        assert credentialBlocks == [[]]
    }

    @Test
    void grayBuildBuildsAndPushesWithRegistryCredentialsAndReturnsTheImage() {
        def image = step('grayBuild', [service: 'test-a', context: 'services/test-a', tag: 'b42', registry: 'registry.example.com',
                                       dockerHost: 'unix:///run/podman.sock'])
        ShellCall call = onlyCall()
        assert call.cliArgs == ['build', '--service=test-a', '--context=services/test-a', '--tag=b42',
                                '--registry=registry.example.com', '--push']
        assert call.env.REGISTRY_USER == 'user-graysteps-registry'
        assert call.env.REGISTRY_PASSWORD == 'secret-graysteps-registry'
        assert call.env.DOCKER_HOST == 'unix:///run/podman.sock'
        assert image == 'registry.example.com/test-a:b42'
    }

    @Test
    void grayBuildWithoutPushOrRegistryOnlyBuilds() {
        def image = step('grayBuild', [service: 'test-b', tag: 't1', push: false, dockerfile: 'Dockerfile.gray', registryCredentialsId: null])
        ShellCall call = onlyCall()
        assert call.cliArgs == ['build', '--service=test-b', '--context=.', '--tag=t1', '--dockerfile=Dockerfile.gray']
        assert !call.env.containsKey('REGISTRY_PASSWORD')
        assert !call.env.containsKey('DOCKER_HOST')
        assert image == 'test-b:t1'
    }

    @Test
    void grayDeployDeploysToGrayAndWaitsByDefault() {
        step('grayDeploy', [service: 'test-a', image: 'registry.example.com/test-a:b42'])
        ShellCall call = onlyCall()
        assert call.cliArgs == ['deploy', '--service=test-a', '--env=gray', '--image=registry.example.com/test-a:b42', '--wait']
        assert call.env.KUBECONFIG == '/secrets/graysteps-kubeconfig'
    }

    @Test
    void grayDeployPassesReplicasAndProd() {
        step('grayDeploy', [service: 'test-a', env: 'prod', image: 'r/test-a:1', replicas: 3, wait: false])
        assert onlyCall().cliArgs == ['deploy', '--service=test-a', '--env=prod', '--image=r/test-a:1', '--replicas=3']
    }

    @Test
    void grayVerifyWritesJunitPerServiceAndPassesTheProbeUrls() {
        step('grayVerify', [service: 'test-a', gateway: 'http://gw.example.com:8080', grayCaller: 'http://gray-probe.gray:8080'])
        ShellCall call = onlyCall()
        assert call.cliArgs == ['verify', '--service=test-a', '--junit=reports/verify-test-a.xml', '--gateway=http://gw.example.com:8080',
                                '--gray-caller=http://gray-probe.gray:8080']
        assert call.env.KUBECONFIG == '/secrets/graysteps-kubeconfig'
        assert !call.env.containsKey('GRAYSTEPS_COOKIE_KEY')  // verify needs no cookie key: bind no secret it does not use
    }

    @Test
    void grayVerifyThatFailsWithRollbackOnFailureRollsTheServiceBackThenFails() {
        cli = { ShellCall c -> c.command == 'verify' ? failWith(c, 'gray share 41% is not 20% (99% confidence)') : 0 }
        Throwable failure = failureOf { step('grayVerify', [service: 'test-a', rollbackOnFailure: true]) }
        assert failure.message == '[grayVerify] gray share 41% is not 20% (99% confidence)'
        assert commands() == ['verify', 'rollback']
        assert shellCalls[1].cliArgs == ['rollback', '--service', 'test-a', '--report=reports/rollback.json', '--wait']
    }

    @Test
    void grayVerifyThatFailsWithoutRollbackOnFailureOnlyFails() {
        cli = { ShellCall c -> failWith(c, 'gray rollout incomplete') }
        assert failureOf { step('grayVerify', [service: 'test-a']) }.message == '[grayVerify] gray rollout incomplete'
        assert commands() == ['verify']
    }

    @Test
    void grayRollbackRollsBackAllOrTheChosenServices() {
        step('grayRollback', [all: true])
        step('grayRollback', [services: ['test-a', 'test-b'], namespaces: ['gray'], dryRun: true, report: null])
        assert shellCalls*.cliArgs == [
            ['rollback', '--all', '--report=reports/rollback.json', '--wait'],
            ['rollback', '--service', 'test-a', 'test-b', '--namespace', 'gray', '--dry-run'],
        ]
        assert shellCalls.every { it.script == SCRIPT && it.env.KUBECONFIG == '/secrets/graysteps-kubeconfig' }
        assert shellCalls.every { !it.env.containsKey('GRAYSTEPS_DB') }  // no credential needed by default
        step('grayRollback', [services: ['test-a'], dbCredentialsId: 'graysteps-db'])
        assert shellCalls[2].env.GRAYSTEPS_DB == 'secret-graysteps-db'  // the audit record's database, when asked
    }

    @Test
    void grayStatusShowsAllOrTheChosenServicesWithTheKubeconfigBound() {
        step('grayStatus')
        step('grayStatus', [services: ['test-a'], report: null])
        assert shellCalls*.cliArgs == [['status', '--report=reports/status.json'], ['status', '--service', 'test-a']]
        assert shellCalls.every { it.script == SCRIPT && it.env.KUBECONFIG == '/secrets/graysteps-kubeconfig' }
        assert shellCalls.every { !it.env.containsKey('GRAYSTEPS_DB') }  // read-only: no database
    }

    @Test
    void grayRollbackNeedsExactlyOneOfAllAndServices() {
        assert failureOf { step('grayRollback', [:]) }.message.startsWith('[grayRollback] give either all: true or services')
        assert failureOf { step('grayRollback', [all: true, services: ['test-a']]) }.message.startsWith('[grayRollback] give either')
        assert shellCalls.isEmpty()
    }

    @Test
    void grayReleaseAppliesThePlanWithReportsAndTheAuditDatabase() {
        step('grayRelease', [plan: 'examples/plans/scenario-2.yaml'])
        ShellCall call = onlyCall()
        assert call.cliArgs == ['release', '--plan=examples/plans/scenario-2.yaml', '--report=reports/release.json',
                                '--junit=reports/release.xml', '--wait']
        assert call.env.GRAYSTEPS_DB == 'secret-graysteps-db'
        assert call.env.KUBECONFIG == '/secrets/graysteps-kubeconfig'
    }

    @Test
    void grayWhitelistSyncSyncsFromTheSourceWithTheDatabaseUrlBound() {
        step('grayWhitelistSync', [source: 'whitelist/tenants.csv', dryRun: true, allowEmpty: true, reason: 'quarterly review'])
        ShellCall call = onlyCall()
        assert call.cliArgs == ['whitelist', 'sync', '--source=whitelist/tenants.csv', '--dry-run', '--allow-empty',
                                '--reason=quarterly review']
        assert call.env.GRAYSTEPS_DB == 'secret-graysteps-db'
        assert !call.env.containsKey('KUBECONFIG')
    }

    @Test
    void aFailingCommandBecomesAnErrorNamingTheStepAndTheCliMessage() {
        cli = { ShellCall c -> failWith(c, "weight '101' is not allowed; use an integer 0-100", 2) }
        Throwable failure = failureOf { step('grayRoute', [service: 'test-a', strategy: 'weight', weight: 101]) }
        assert failure.message == "[grayRoute] weight '101' is not allowed; use an integer 0-100"
    }

    @Test
    void aFailingCommandWithoutAnErrorFilePointsAtTheLog() {
        cli = { ShellCall c -> 3 }
        Throwable failure = failureOf { step('grayDeploy', [service: 'test-a', image: 'r/a:1']) }
        assert failure.message == '[grayDeploy] graysteps exited with status 3; see the log above'
    }

    @Test
    void aStaleErrorFileFromAnEarlierRunIsClearedBeforeEachRun() {
        files['.graysteps/grayRoute-error.json'] = '{"step":"route","message":"old failure","type":"GraystepsError"}'
        cli = { ShellCall c -> 1 }
        assert failureOf { step('grayRoute', [service: 'test-a']) }.message == '[grayRoute] graysteps exited with status 1; see the log above'
    }

    @Test
    void aMisspelledParameterStopsTheBuildAndListsTheAllowedOnes() {
        Throwable failure = failureOf { step('grayRoute', [service: 'test-a', weigth: 20]) }
        assert failure.message.startsWith('[grayRoute] unknown parameter(s) weigth; allowed: catalog, createSubsets, dryRun, istiod, kubeconfigCredentialsId')
        assert shellCalls.isEmpty()
    }

    @Test
    void aMissingRequiredParameterStopsTheBuildBeforeAnyCommand() {
        assert failureOf { step('grayRoute', [:]) }.message == '[grayRoute] service required; see vars/grayRoute.txt'
        assert failureOf { step('grayDeploy', [service: 'test-a']) }.message == '[grayDeploy] image required; see vars/grayDeploy.txt'
        assert failureOf { step('grayWhitelistSync', [:]) }.message == '[grayWhitelistSync] source required; see vars/grayWhitelistSync.txt'
        assert shellCalls.isEmpty()
    }

    @Test
    void secretsExistOnlyInsideTheCommandsEnvironmentAndAreNeverEchoed() {
        step('grayRelease', [plan: 'p.yaml'])
        step('grayBuild', [service: 'test-a', tag: 't'])
        assert shellCalls.every { it.env.values().any { v -> v.startsWith('secret-') } }
        assert !env.keySet().any { it in ['KUBECONFIG', 'GRAYSTEPS_DB', 'REGISTRY_PASSWORD', 'GRAYSTEPS_ARGS'] }
        List echoed = helper.callStack.findAll { it.methodName == 'echo' }.collect { it.argsToString() }
        assert !echoed.any { it.contains('secret-') }
        assert !shellCalls.any { it.script.contains('secret-') || it.env.GRAYSTEPS_ARGS.contains('secret-') }
    }
}
