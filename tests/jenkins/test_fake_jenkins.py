"""The fake answers the way Jenkins does where python-jenkins depends on it (auth, crumb, 404s, version header)."""

import requests

from tests.fixtures.jenkins import TOKEN, USER


def test_anonymous_is_refused_but_still_told_the_jenkins_version(fake_jenkins):
    response = requests.get(fake_jenkins.url + "api/json", timeout=10)
    assert response.status_code == 403
    assert response.headers["X-Jenkins"] == "2.479.3"


def test_a_post_without_the_crumb_is_refused_and_with_it_accepted(fake_jenkins):
    auth = (USER, TOKEN)
    xml = "<flow-definition><description/></flow-definition>"
    refused = requests.post(fake_jenkins.url + "createItem?name=a", data=xml, auth=auth, timeout=10,
                            headers={"Content-Type": "application/xml"})
    assert refused.status_code == 403 and "crumb" in refused.text
    crumb = requests.get(fake_jenkins.url + "crumbIssuer/api/json", auth=auth, timeout=10).json()
    headers = {crumb["crumbRequestField"]: crumb["crumb"], "Content-Type": "application/xml"}
    assert requests.post(fake_jenkins.url + "createItem?name=a", data=xml, auth=auth, headers=headers, timeout=10).status_code == 200
    again = requests.post(fake_jenkins.url + "createItem?name=a", data=xml, auth=auth, headers=headers, timeout=10)
    assert again.status_code == 400 and "already exists" in again.headers["X-Error"]
    saved = requests.get(fake_jenkins.url + "job/a/config.xml", auth=auth, timeout=10).text
    assert saved.startswith("<?xml version='1.1' encoding='UTF-8'?>\n<flow-definition plugin=\"workflow-job@")


def test_missing_jobs_and_folders_are_404(fake_jenkins):
    auth = (USER, TOKEN)
    assert requests.get(fake_jenkins.url + "job/nope/api/json", auth=auth, timeout=10).status_code == 404
    assert requests.get(fake_jenkins.url + "job/nope/config.xml", auth=auth, timeout=10).status_code == 404
    crumb = requests.get(fake_jenkins.url + "crumbIssuer/api/json", auth=auth, timeout=10).json()["crumb"]
    missing_folder = requests.post(fake_jenkins.url + "job/nope/createItem?name=x", data="<a/>", auth=auth, timeout=10,
                                   headers={"Jenkins-Crumb": crumb, "Content-Type": "application/xml"})
    assert missing_folder.status_code == 404
