package graysteps

import groovy.json.JsonOutput
import org.junit.Test

/** grayProgress and the gray-progressive job: one stage per schedule step, an input per manual pause, data never shell text. */
class ProgressTest extends GraystepsPipelineTest {

    static final String SCHEDULE_FILE = '.graysteps/grayProgress-schedule.json'
    static final Map SCHEDULE = [plan: 'checkout', services: ['test-a', 'test-b'], steps: [
        [step: 1, label: 'whitelist', pause: 0, analysis: []],
        [step: 2, label: 'weight 20', pause: 'manual', analysis: ['success-rate (gray <= 2x prod)']],
        [step: 3, label: 'promote', pause: 0, analysis: []]]]

    /** The fake graysteps: `--show` writes the schedule where it was asked to; `failStep` makes that step's run fail. */
    void fakeCli(Integer failStep = null) {
        cli = { ShellCall c ->
            List a = c.cliArgs ?: []
            if (a.contains('--show')) {
                files[a.find { it.startsWith('--report=') }.substring('--report='.length())] = JsonOutput.toJson(SCHEDULE)
                return 0
            }
            if (failStep != null && a.contains('--step=' + failStep)) {
                return failWith(c, "plan checkout rolled-back: step ${failStep} (weight 20): test-a success-rate: gray is worse than 2x prod")
            }
            return 0
        }
    }

    List<List<String>> progressArgs() { shellCalls.findAll { it.command == 'progress' }.collect { it.cliArgs } }

    @Test
    void grayProgressRunsEachScheduleStepInItsOwnStageAndAsksAtAManualPause() {
        fakeCli()
        step('grayProgress', [plan: 'plans/checkout.yaml', prometheus: 'http://prometheus.monitoring:9090', approvers: 'release-managers'])
        assert events.findAll { it.startsWith('stage ') || it.startsWith('input ') } == [
            'stage Step 1/3: whitelist', 'stage Step 2/3: weight 20', 'stage Approve step 3/3',
            'input Step 2 (weight 20) passed its analysis. Go on to promote?', 'stage Step 3/3: promote']
        List runs = progressArgs()
        assert runs[0] == ['progress', '--plan=plans/checkout.yaml', '--show', '--report=' + SCHEDULE_FILE]
        assert runs[1..3].collect { it.last() } == ['--step=1', '--step=2', '--step=3']
        assert runs[1] == ['progress', '--plan=plans/checkout.yaml', '--prometheus=http://prometheus.monitoring:9090', '--settle=2s',
                           '--report=reports/progress.json', '--step=1']
        ShellCall stepRun = shellCalls.find { it.cliArgs?.contains('--step=1') }
        assert stepRun.script == 'graysteps --args-json-env GRAYSTEPS_ARGS'
        assert stepRun.env.KUBECONFIG == '/secrets/graysteps-kubeconfig' && stepRun.env.GRAYSTEPS_DB == 'secret-graysteps-db'
    }

    @Test
    void istiodTravelsAsDataToEveryStepAndToTheRollback() {
        fakeCli(2)
        failureOf { step('grayProgress', [plan: 'plans/checkout.yaml', istiod: 'http://istiod.istio-system:15014', waitTimeout: 30]) }
        ShellCall stepRun = shellCalls.find { it.cliArgs?.contains('--step=1') }
        assert stepRun.env.GRAYSTEPS_ISTIOD == 'http://istiod.istio-system:15014'
        assert stepRun.cliArgs.contains('--wait-timeout=30') && !stepRun.env.GRAYSTEPS_ARGS.contains('istiod')
    }

    @Test
    void aBadVerdictFailsTheBuildAtThatStageAndRunsNoLaterStep() {
        fakeCli(2)
        Throwable failure = failureOf { step('grayProgress', [plan: 'plans/checkout.yaml']) }
        assert failure.message.startsWith('[grayProgress] plan checkout rolled-back: step 2 (weight 20)')
        assert progressArgs().collect { it.last() } == ['--report=' + SCHEDULE_FILE, '--step=1', '--step=2']
        assert !events.any { it.startsWith('input ') }
    }

    @Test
    void aBadVerdictIsNotRolledBackTwice() {
        fakeCli(2)
        failureOf { step('grayProgress', [plan: 'plans/checkout.yaml']) }
        assert !commands().contains('rollback')  // graysteps progress rolled the plan back itself
    }

    @Test
    void anAbortedBuildInTheMiddleOfAStepRollsThePlansServicesBack() {
        cli = { ShellCall c ->
            List a = c.cliArgs ?: []
            if (a.contains('--show')) { files[SCHEDULE_FILE] = JsonOutput.toJson(SCHEDULE); return 0 }
            if (a.contains('--step=2')) { throw new PipelineError('Aborted by bob') }  // Jenkins interrupts the sh
            return 0
        }
        Throwable failure = failureOf { step('grayProgress', [plan: 'plans/checkout.yaml']) }
        assert failure.message == 'Aborted by bob'
        assert shellCalls.find { it.command == 'rollback' }.cliArgs == ['rollback', '--service', 'test-a', 'test-b', '--report=reports/rollback.json', '--wait']
    }

    @Test
    void abortingAManualPauseRollsThePlansServicesBack() {
        fakeCli()
        helper.registerAllowedMethod('input', [Map], { Map m -> events << 'input ' + m.message; throw new PipelineError('Aborted by alice') })
        Throwable failure = failureOf { step('grayProgress', [plan: 'plans/checkout.yaml']) }
        assert failure.message == 'Aborted by alice'
        assert shellCalls.find { it.command == 'rollback' }.cliArgs == ['rollback', '--service', 'test-a', 'test-b', '--report=reports/rollback.json', '--wait']
        assert !progressArgs().any { it.contains('--step=3') }
    }

    @Test
    void webhookUrlsAreBoundFromCredentialsNeverPassedAsArguments() {
        fakeCli()
        step('grayProgress', [plan: 'plans/checkout.yaml', webhookCredentialsIds: [WECOM_HOOK: 'wecom-robot']])
        ShellCall stepRun = shellCalls.find { it.cliArgs?.contains('--step=1') }
        assert stepRun.env.WECOM_HOOK == 'secret-wecom-robot'
        assert !stepRun.env.GRAYSTEPS_ARGS.contains('wecom')
        assert credentialBlocks.last().contains([type: 'string', credentialsId: 'wecom-robot', variable: 'WECOM_HOOK'])
    }

    @Test
    void grayProgressNeedsAPlan() {
        Throwable failure = failureOf { step('grayProgress', [:]) }
        assert failure.message == '[grayProgress] plan required; see vars/grayProgress.txt'
    }

    @Test
    void theGrayProgressiveJobRunsThePlanUnderThePlansLockAndKeepsTheReport() {
        fakeCli()
        binding.setVariable('params', [PLAN: 'plans/checkout.yaml', GIT_REF: 'main', PROMETHEUS: ''])
        runScript('pipelines/gray-progressive.Jenkinsfile')
        assert events.first() == 'lock graysteps-plan-plans/checkout.yaml' && events.last() == 'unlock graysteps-plan-plans/checkout.yaml'
        assert events.contains('stage Step 3/3: promote') && events.contains('archive reports/**')
        assert !progressArgs()[1].any { it.startsWith('--prometheus') }  // empty PROMETHEUS: the plan's or the agent's
    }
}
