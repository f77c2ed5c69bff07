"""Platform memory maps from TOML: the default layout and validation of user files."""
import pytest

from emu.platform_map import PlatformConfigError, load_memory_map


def test_default_map_has_secure_and_normal_dram():
    mm = load_memory_map()
    assert mm.region("secure_dram").secure and not mm.region("ns_dram").secure
    assert mm.region_of(0x0E100000).name == "secure_dram"
    assert mm.region_of(0x0E000000).name == "secure_sram"
    assert not mm.region("secure_sram").behind_tzc and mm.region("secure_dram").behind_tzc
    assert mm.nsaid["cpu"] == 0 and mm.devices["tzc400"] == 0x09100000
    assert mm.region_of(0x40000000).name == "ns_dram"
    assert mm.region("ns_dram").contains(mm.cma_base, mm.cma_size)
    assert {c.use_case for c in mm.carveouts} == {"secure-video", "trusted-ui",
                                                   "secure-video-record"}


BASE = """
[[region]]
name = "secure_dram"
base = 0x0e000000
size = 0x100000
secure = true
[[region]]
name = "ns_dram"
base = 0x40000000
size = 0x1000000
[cma]
base = 0x40800000
size = 0x100000
"""


def test_a_user_file_is_loaded(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('name = "mine"\n' + BASE)
    assert load_memory_map(f).name == "mine"


@pytest.mark.parametrize("extra, message", [
    ('[[region]]\nname = "x"\nbase = 0x0e080000\nsize = 0x100000\n', "overlap"),
    ('[[region]]\nname = "y"\nbase = 0x10000001\nsize = 0x1000\n', "multiples"),
    ('[[carveout]]\nuse_case = "secure-video"\nbase = 0x0e000000\nsize = 0x1000\n', "inside ns_dram"),
])
def test_bad_maps_are_refused_with_the_entry_named(tmp_path, extra, message):
    f = tmp_path / "p.toml"
    f.write_text(BASE + extra)
    with pytest.raises(PlatformConfigError, match=message):
        load_memory_map(f)


def test_unreadable_or_malformed_file(tmp_path):
    with pytest.raises(PlatformConfigError, match="cannot read"):
        load_memory_map(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[region]\n")
    with pytest.raises(PlatformConfigError, match="bad.toml"):
        load_memory_map(bad)
