from unittest import mock


def test_healthz_is_200_when_database_and_broker_answer(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"
    assert response.json()["broker"] == "ok"


def test_healthz_names_the_broker_when_it_does_not_answer(client, db):
    broken = mock.Mock(queue_size=mock.Mock(side_effect=ConnectionError("refused")))
    with mock.patch("notifyproject.health.get_broker", return_value=broken):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["broker"]


def test_livez_touches_nothing(client):
    assert client.get("/livez").json() == {"status": "ok"}
