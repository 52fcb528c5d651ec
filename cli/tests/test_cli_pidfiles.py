from shop_cli import pidfiles


def test_published_pids_are_read_back_by_instance_until_withdrawn(tmp_path):
    pidfiles.publish(tmp_path, "order@127.0.0.2:50051", 41)
    pidfiles.publish(tmp_path, "order@127.0.0.1:50051", 40)
    pidfiles.publish(tmp_path, "order@127.0.0.1:50051", 42)  # a restart replaces the old pid
    assert pidfiles.published(tmp_path) == {
        "order@127.0.0.1:50051": 42,
        "order@127.0.0.2:50051": 41,
    }
    pidfiles.withdraw(tmp_path, "order@127.0.0.2:50051")
    pidfiles.withdraw(tmp_path, "never@published:1")
    assert pidfiles.published(tmp_path) == {"order@127.0.0.1:50051": 42}


def test_no_pids_directory_and_files_without_a_pid_read_as_nothing(tmp_path):
    assert pidfiles.published(tmp_path) == {}
    pidfiles.directory(tmp_path).mkdir()
    (pidfiles.directory(tmp_path) / "user@127.0.0.1:50054.pid").write_text("not a pid\n")
    assert pidfiles.published(tmp_path) == {}


def test_an_instance_name_says_its_service():
    instance = pidfiles.instance_name("inventory", "[::1]:50052")
    assert instance == "inventory@[::1]:50052"
    assert pidfiles.service_of(instance) == "inventory"
