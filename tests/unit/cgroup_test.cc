#include <gtest/gtest.h>

#include "collectors/host/cgroup.h"

namespace vigil {
namespace {

constexpr const char* kId = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct Layout {
  const char* name;
  std::string path;
  std::string container_id;
  std::string pod_uid;
};

void PrintTo(const Layout& c, std::ostream* os) { *os << c.name; }

class CgroupLayouts : public ::testing::TestWithParam<Layout> {};

TEST_P(CgroupLayouts, NamesContainerAndPod) {
  ContainerRef ref = parse_container_ref(GetParam().path);
  EXPECT_EQ(ref.container_id, GetParam().container_id);
  EXPECT_EQ(ref.pod_uid, GetParam().pod_uid);
}

const std::string id = kId;
INSTANTIATE_TEST_SUITE_P(
    Table, CgroupLayouts,
    ::testing::Values(
        Layout{"Host", "/system.slice/nginx.service", "", ""},
        Layout{"Root", "/", "", ""},
        Layout{"UserSession", "/user.slice/user-0.slice/session-3.scope", "", ""},
        Layout{"DockerCgroupfs", "/docker/" + id, id, ""},
        Layout{"DockerSystemd", "/system.slice/docker-" + id + ".scope", id, ""},
        Layout{"PodmanSystemd", "/machine.slice/libpod-" + id + ".scope", id, ""},
        Layout{"PodmanConmonIsNotTheContainer",
               "/machine.slice/libpod-conmon-" + id + ".scope", "", ""},
        Layout{"KubepodsContainerdSystemd",
               "/kubepods.slice/kubepods-burstable.slice/"
               "kubepods-burstable-pod7f1c2a3b_4d5e_6f70_8192_a3b4c5d6e7f8.slice/cri-containerd-" +
                   id + ".scope",
               id, "7f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8"},
        Layout{"KubepodsContainerdCgroupfs",
               "/kubepods/besteffort/pod7f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8/" + id, id,
               "7f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8"},
        Layout{"KubepodsGuaranteedCrio",
               "/kubepods.slice/kubepods-pod7f1c2a3b_4d5e_6f70_8192_a3b4c5d6e7f8.slice/crio-" + id +
                   ".scope",
               id, "7f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8"},
        Layout{"CrioConmon",
               "/kubepods.slice/kubepods-pod7f1c2a3b_4d5e_6f70_8192_a3b4c5d6e7f8.slice/crio-conmon-" +
                   id + ".scope",
               "", "7f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8"},
        Layout{"PodSliceOnly",
               "/kubepods.slice/kubepods-besteffort.slice/"
               "kubepods-besteffort-pod7f1c2a3b_4d5e_6f70_8192_a3b4c5d6e7f8.slice",
               "", "7f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8"},
        Layout{"NestedUnderContainerdService",
               "/system.slice/containerd.service/kubepods-burstable-"
               "pod7f1c2a3b_4d5e_6f70_8192_a3b4c5d6e7f8.slice:cri-containerd:" + id,
               "", ""},
        // Security review F13: names a user chose in a delegated subtree, or a pod
        // name outside the kubelet's cgroups, name no pod or container.
        Layout{"SecurityF13UserDelegatedPodName",
               "/user.slice/user-1000.slice/user@1000.service/app.slice/pod7f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8",
               "", ""},
        Layout{"SecurityF13UserDelegatedContainerId",
               "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + id + ".scope", "", ""},
        Layout{"SecurityF13PodNameWithoutAKubeletParent",
               "/system.slice/pod7f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8", "", ""},
        Layout{"ShortHexIsNotAnId", "/docker/0123abcd", "", ""},
        Layout{"UppercaseIsNotAnId",
               "/docker/0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", "", ""}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Cgroup2Mount, FoundInHybridMountinfo) {
  const char* mountinfo =
      "25 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
      "31 25 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755\n"
      "32 31 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev shared:10 - cgroup2 cgroup2 rw\n"
      "33 31 0:28 / /sys/fs/cgroup/systemd rw shared:11 - cgroup cgroup rw,name=systemd\n";
  auto m = find_cgroup2_mount(mountinfo);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, "/sys/fs/cgroup/unified");
}

TEST(Cgroup2Mount, FoundInUnifiedMountinfoWithOptionalFields) {
  auto m = find_cgroup2_mount(
      "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev shared:9 master:1 - cgroup2 cgroup2 rw,nsdelegate\n");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, "/sys/fs/cgroup");
}

TEST(Cgroup2Mount, MissingIsAnError) {
  auto m = find_cgroup2_mount("33 31 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("no cgroup2"), std::string::npos);
}

TEST(ProcCgroup, PicksTheV2Line) {
  EXPECT_EQ(parse_proc_cgroup_v2("12:pids:/user.slice\n1:name=systemd:/a\n0::/system.slice/x.service\n"),
            "/system.slice/x.service");
  EXPECT_EQ(parse_proc_cgroup_v2("0::/\n"), "/");
  EXPECT_EQ(parse_proc_cgroup_v2("3:cpu:/a\n"), "");
  EXPECT_EQ(parse_proc_cgroup_v2(""), "");
}

}  // namespace
}  // namespace vigil
