// Calls one library step by name, as a Jenkinsfile would (the library is loaded with @Library).
@Library('graysteps') _
return this."${stepName}"(stepArgs)
