

def test_network_failures_are_said_in_words_not_python_names():
    from pools.errors import network_words

    assert network_words("NewConnectionError") == "cannot connect (refused or unreachable)"
    assert network_words("NameResolutionError") == "the host name does not resolve"
    assert network_words("ReadTimeoutError") == "no answer in time"
    assert network_words("ConnectTimeoutError") == "the connection timed out"
    assert "Error" not in network_words("SomethingElseError")
