# SPDX-License-Identifier: Apache-2.0
# CPACK_PRE_BUILD_SCRIPTS (CMakeLists.txt): runs after cpack has installed
# the project into its staging tree, before the tree is packed.
#
# - kanal-loadgen stays out of the package. It is a benchmark client that
#   sends synthetic events as fast as it can; on a production host the only
#   kanald it reaches without --allow-remote (loopback) is the production
#   one, whose counts it would inflate. Developers have it in build/tools/.
# - The unit (ExecStart=/usr/sbin/kanald), the conffile list and the
#   maintainer scripts name the /usr layout: refuse a tree that is not it.
set(stage "${CPACK_TEMPORARY_INSTALL_DIRECTORY}")
foreach(f IN ITEMS usr/sbin/kanald usr/bin/kanalctl etc/kanal/kanald.conf
                   lib/systemd/system/kanald.service)
  if(NOT EXISTS "${stage}/${f}")
    message(FATAL_ERROR "kanal packaging: /${f} is not in the package; "
                        "configure the build with -DCMAKE_INSTALL_PREFIX=/usr "
                        "(docs/packaging.md)")
  endif()
endforeach()
file(REMOVE "${stage}/usr/bin/kanal-loadgen")
