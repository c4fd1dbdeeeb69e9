#!/bin/bash
# The job script sciwm submits for one experiment. To change it, copy this file and point the
# slurm connector's `template` setting at the copy. Placeholders (double braces) it fills in:
#   directives  the #SBATCH lines of the settings partition, gpus, cpus_per_task, mem and
#               sbatch_options
#   setup       the `setup` lines (module load ..., source .../activate, ...)
#   run         records the job id and runs the experiment; required, keep it last
# The job name, comment, output files and time limit are given on sbatch's command line.
{{ directives }}
set -e
{{ setup }}
{{ run }}
