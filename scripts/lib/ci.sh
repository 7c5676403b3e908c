# Sourced by the test scripts. A piece of the test run that this machine lacks (qemu, root)
# fails the run under CI (CI=true, as CI services set it), so a green CI always means the
# whole run ran; on a developer's machine the part is skipped, loudly.
#
#   ci_missing WHO WHAT    WHO: the script's name; WHAT: what is missing and how to get it

ci_missing() {
  local who=$1 what=$2
  case ${CI:-} in
    "" | false | 0)
      {
        echo "************************************************************************"
        echo "$who: SKIPPED: $what"
        echo "$who: (under CI, CI=true, this fails the run)"
        echo "************************************************************************"
      } >&2
      ;;
    *)
      echo "$who: FAIL: $what (CI=$CI: a CI run must run every part, never skip one)" >&2
      exit 1
      ;;
  esac
}
