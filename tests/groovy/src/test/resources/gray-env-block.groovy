// A Jenkinsfile that runs one command inside grayEnv.
@Library('graysteps') _
grayEnv(envArgs) {
    sh 'graysteps --version'
}
