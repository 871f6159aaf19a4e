#!/usr/bin/env bash
# without-slurm.sh CMD... — run CMD as on a machine that never had Slurm.
#
# Every PATH directory that holds a Slurm client (srun, sbatch, ...) is replaced by a mirror of
# symlinks to everything else in it, so `make test` cannot pass only because Slurm happens to be
# installed here (submitit, for one, looks for `srun` on PATH). The mirror lives in a temporary
# folder removed on exit.
set -euo pipefail
SLURM_TOOLS="sacct sacctmgr salloc sattach sbatch sbcast scancel scontrol scrontab sdiag sinfo
sprio squeue sreport srun sshare sstat strigger sview slurmctld slurmd slurmdbd slurmstepd"
shadow=$(mktemp -d)
trap 'rm -rf "$shadow"' EXIT
newpath=()
IFS=: read -r -a dirs <<< "$PATH"
for d in "${dirs[@]}"; do
  has=0
  for t in $SLURM_TOOLS; do [ -e "$d/$t" ] && has=1 && break; done
  if [ "$has" = 0 ]; then newpath+=("$d"); continue; fi
  m="$shadow/$(echo "$d" | tr / _)"
  mkdir -p "$m"
  for f in "$d"/* "$d"/.[!.]*; do
    [ -e "$f" ] || continue
    name=$(basename "$f")
    case " $(echo $SLURM_TOOLS) " in *" $name "*) continue ;; esac
    ln -s "$f" "$m/$name"
  done
  newpath+=("$m")
done
PATH=$(IFS=:; echo "${newpath[*]}")
export PATH
if command -v srun >/dev/null || command -v sbatch >/dev/null; then
  echo "without-slurm: Slurm is still on PATH" >&2; exit 1
fi
"$@"
