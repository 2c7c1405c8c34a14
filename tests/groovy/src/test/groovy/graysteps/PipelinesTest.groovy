package graysteps

import org.junit.Test

/** Each job calls its steps in order, under its lock, publishes its reports, and gray-release rolls back on a failed verify. */
class PipelinesTest extends GraystepsPipelineTest {

    static final Map RELEASE = [SERVICE: 'test-a', GIT_REF: 'v1.2.0', IMAGE: '', STRATEGY: 'weight', GRAY_WEIGHT: '20', DRY_RUN: false]

    def run(String job, Map params) {
        binding.setVariable('params', params)
        return runScript("pipelines/${job}.Jenkinsfile")
    }

    List<String> args(String command) { shellCalls.find { it.command == command }.cliArgs }

    /** properties([...]) would replace the parameters and triggers `graysteps jobs sync` wrote (SERVICE from the catalog). */
    boolean calledProperties() { binding.hasVariable('jobProperties') }

    @Test
    void grayReleaseBuildsPushesDeploysRoutesAndVerifiesUnderTheServiceLock() {
        run('gray-release', RELEASE)
        assert commands() == ['build', 'deploy', 'route', 'verify']
        assert events.first() == 'lock graysteps-service-test-a' && events.last() == 'unlock graysteps-service-test-a'
        assert events.findAll { it.startsWith('stage ') } == ['stage Checkout', 'stage Build and push', 'stage Deploy to gray',
                                                              'stage Route', 'stage Verify']
        assert args('build') == ['build', '--service=test-a', '--context=services/test-a', '--tag=b42',
                                 '--registry=registry.example.com', '--push']
        assert args('deploy') == ['deploy', '--service=test-a', '--env=gray', '--image=registry.example.com/test-a:b42', '--wait']
        assert args('route') == ['route', '--service=test-a', '--strategy=weight', '--weight=20', '--wait']
        assert args('verify') == ['verify', '--service=test-a', '--junit=reports/verify-test-a.xml']
        assert events.indexOf('junit reports/*.xml') > events.indexOf('graysteps verify')
        assert events.contains('archive reports/**')
        assert !calledProperties()
    }

    @Test
    void grayReleaseRollsBackAndFailsWhenVerifyFails() {
        cli = { ShellCall c -> c.command == 'verify' ? failWith(c, 'probes with the gray cookie were answered by prod') : 0 }
        Throwable failure = failureOf { run('gray-release', RELEASE) }
        assert failure.message == '[grayVerify] probes with the gray cookie were answered by prod'
        assert commands() == ['build', 'deploy', 'route', 'verify', 'rollback']
        assert args('rollback') == ['rollback', '--service', 'test-a', '--report=reports/rollback.json', '--wait']
        assert events.indexOf('junit reports/*.xml') > events.indexOf('graysteps rollback')  // the report is still published
        assert events.last() == 'unlock graysteps-service-test-a'
    }

    @Test
    void grayReleaseOfAnExistingImageSkipsTheBuildAndOnlyWeightStrategiesPassAWeight() {
        run('gray-release', RELEASE + [IMAGE: 'registry.example.com/test-b:v7', SERVICE: 'test-b', STRATEGY: 'linked'])
        assert commands() == ['deploy', 'route', 'verify']
        assert args('deploy').contains('--image=registry.example.com/test-b:v7')
        assert args('route') == ['route', '--service=test-b', '--strategy=linked', '--wait']
    }

    @Test
    void grayReleaseDryRunBuildsWithoutPushAndOnlyShowsTheRouteDiff() {
        run('gray-release', RELEASE + [DRY_RUN: true, STRATEGY: 'whitelist'])
        assert commands() == ['build', 'route']
        assert !args('build').contains('--push')
        assert args('route') == ['route', '--service=test-a', '--strategy=whitelist', '--dry-run']
    }

    @Test
    void grayTrafficPromoteAsksForConfirmationBeforeTakingTheLock() {
        run('gray-traffic', [SERVICE: 'test-b', STRATEGY: 'promote', GRAY_WEIGHT: '20', DRY_RUN: false])
        assert events.indexOf('input Send ALL traffic of test-b to gray?') < events.indexOf('lock graysteps-service-test-b')
        assert commands() == ['route', 'verify', 'status']
        assert args('route') == ['route', '--service=test-b', '--strategy=promote', '--wait']
        assert args('status') == ['status', '--service', 'test-b', '--report=reports/status.json']
        assert !calledProperties()
    }

    @Test
    void grayTrafficWeightAndRollbackNeedNoConfirmation() {
        run('gray-traffic', [SERVICE: 'test-a', STRATEGY: 'weight', GRAY_WEIGHT: '35', DRY_RUN: false])
        run('gray-traffic', [SERVICE: 'test-a', STRATEGY: 'rollback', GRAY_WEIGHT: '35', DRY_RUN: false])
        assert !events.any { it.startsWith('input') }
        assert shellCalls.findAll { it.command == 'route' }*.cliArgs == [
            ['route', '--service=test-a', '--strategy=weight', '--weight=35', '--wait'],
            ['route', '--service=test-a', '--strategy=rollback', '--wait']]
    }

    @Test
    void grayTrafficPromoteDryRunNeedsNoConfirmationAndDoesNotVerify() {
        run('gray-traffic', [SERVICE: 'test-a', STRATEGY: 'promote', GRAY_WEIGHT: '20', DRY_RUN: true])
        assert !events.any { it.startsWith('input') }
        assert commands() == ['route']
        assert args('route') == ['route', '--service=test-a', '--strategy=promote', '--dry-run']
    }

    @Test
    void mergeReleaseTagsTheMergedCommitAndAppliesTheWhitelistStrategy() {
        run('merge-release', [SERVICE: 'test-a'])
        assert commands() == ['build', 'deploy', 'route', 'verify']
        assert args('build').contains('--tag=g0123456789ab')
        assert args('route') == ['route', '--service=test-a', '--strategy=whitelist', '--wait']
        assert !calledProperties()
    }

    @Test
    void mergeReleaseRollsBackAndFailsWhenVerifyFails() {
        cli = { ShellCall c -> c.command == 'verify' ? failWith(c, 'gray rollout incomplete') : 0 }
        assert failureOf { run('merge-release', [SERVICE: 'test-b']) }.message == '[grayVerify] gray rollout incomplete'
        assert commands() == ['build', 'deploy', 'route', 'verify', 'rollback']
    }

    @Test
    void aFailedDeployStopsTheReleaseBeforeAnyRouteChanges() {
        cli = { ShellCall c -> c.command == 'deploy' ? failWith(c, 'rollout of test-a in gray exceeded its progress deadline') : 0 }
        Throwable failure = failureOf { run('gray-release', RELEASE) }
        assert failure.message == '[grayDeploy] rollout of test-a in gray exceeded its progress deadline'
        assert commands() == ['build', 'deploy']
    }

    @Test
    void whitelistSyncRunsOnCronUnderTheWhitelistLock() {
        run('whitelist-sync', [SOURCE: 'whitelist/tenants.csv', DRY_RUN: false])
        assert commands() == ['whitelist sync']
        assert args('whitelist sync') == ['whitelist', 'sync', '--source=whitelist/tenants.csv',
                                          '--reason=scheduled sync, jenkins-whitelist-sync-42']
        assert events.contains('lock graysteps-whitelist')
        assert !calledProperties()
    }

    @Test
    void emergencyRollbackRollsBackEverythingByDefault() {
        run('emergency-rollback', [ALL: true, SERVICES: '', DRY_RUN: false])
        assert shellCalls.findAll { it.command }*.cliArgs == [['rollback', '--all', '--report=reports/rollback.json', '--wait']]
        assert !events.any { it.startsWith('lock') }   // an emergency never queues behind a release
        assert events.contains('archive reports/**')
    }

    @Test
    void emergencyRollbackRollsBackAChosenSet() {
        run('emergency-rollback', [ALL: false, SERVICES: 'test-a, test-b', DRY_RUN: true])
        assert args('rollback') == ['rollback', '--service', 'test-a', 'test-b', '--dry-run', '--report=reports/rollback.json']
    }

    @Test
    void emergencyRollbackWithNothingChosenFailsClearly() {
        Throwable failure = failureOf { run('emergency-rollback', [ALL: false, SERVICES: ' ', DRY_RUN: false]) }
        assert failure.message.startsWith('[grayRollback] give either all: true or services')
        assert commands().isEmpty()
    }

    @Test
    void fleetStatusShowsEveryServiceOrAChosenSetAndKeepsTheReport() {
        run('fleet-status', [SERVICES: ''])
        run('fleet-status', [SERVICES: 'test-a, test-b'])
        assert shellCalls.findAll { it.command }*.cliArgs == [['status', '--report=reports/status.json'],
                                                             ['status', '--service', 'test-a', 'test-b', '--report=reports/status.json']]
        assert !events.any { it.startsWith('lock') }  // read-only: never queues behind a release
        assert events.contains('archive reports/**')
        assert !calledProperties()
    }

    @Test
    void fleetStatusFailsNamingTheRoutesChangedByHand() {
        cli = { ShellCall c -> c.command == 'status' ? failWith(c, 'routes changed by hand (not what their strategy makes): test-b') : 0 }
        Throwable failure = failureOf { run('fleet-status', [SERVICES: '']) }
        assert failure.message == '[grayStatus] routes changed by hand (not what their strategy makes): test-b'
        assert events.contains('archive reports/**')  // the report is still kept
    }

    @Test
    void theLibrarysOwnCiRunsTheTestCommand() {
        binding.setVariable('params', [:])
        runScript('Jenkinsfile')
        assert shellCalls*.script == ['python3 -m venv .venv', 'make test PYTEST_ARGS=--junitxml=reports/pytest.xml']
        assert events.any { it.startsWith('junit ') && it.contains('surefire-reports') }
    }
}
