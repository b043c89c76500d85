#!/usr/bin/env perl
# Kaldi-style Slurm job runner with the same interface as run.pl: one array job per call.
#
#   slurm.pl [options] JOB=1:N exp/log/x.JOB.log cmd args...
#
# Submits "sbatch --array=1-N --wait", one task per JOB value; each task's output goes to its
# own log (%a in --output), JOB in the command becomes $SLURM_ARRAY_TASK_ID.  After the array
# finishes, each log's "# Ended (code N)" line decides success, as with run.pl; a log without
# it means Slurm killed the task (time or memory limit) before the command finished.
# The batch script is kept in <log dir>/q/<name>.sh; SLURM_ARRAY_TASK_ID=3 bash <it> redoes task 3 locally.
#
# Options (Kaldi names; --a-b and --a_b are the same):
#   --mem 4G          memory per task (--mem)
#   --gpu N           GPUs per task (--gres=gpu:N); 0 for none
#   --num-threads N   CPUs per task (--cpus-per-task)
#   --time T          time limit, e.g. 4:00:00
#   --partition P     partition (default: $SLURM_PARTITION if set)
#   --account A       account to charge
#   --max-jobs-run N  at most N tasks at once (--array=1-N%M)
#   --job-name NAME   default: from the log name
#   --sbatch-opts S   extra sbatch options, split on whitespace
#   --dry-run         print the sbatch command and the batch script; submit nothing
use strict;
use warnings;
use File::Basename qw(basename dirname);
use File::Path qw(make_path);
use File::Spec;
use POSIX qw(strftime);

my $prog = basename($0);
my $usage = <<"END";
Usage: $prog [options] [JOB=1:N] <log-file> <command> [args...]
  e.g. $prog --mem 8G --gpu 1 JOB=1:4 exp/log/train.JOB.log python3 -m x --part JOB
  Options: --mem --gpu --num-threads --time --partition --account --max-jobs-run --job-name
           --sbatch-opts --dry-run (see the top of $0)
END

sub die_usage {
  my ($msg) = @_;
  print STDERR "$prog: $msg\n" if defined $msg;
  print STDERR $usage;
  exit 1;
}

sub sh_quote {
  my ($text) = @_;
  (my $q = $text) =~ s/'/'\\''/g;
  return "'$q'";
}

# Same word rules as run.pl so a command means the same under both runners.
sub shell_word {
  my ($arg) = @_;
  return $arg if length($arg) && $arg !~ /[\s'"]/;
  return sh_quote($arg);
}

my %opt = (mem => '', gpu => 0, num_threads => 1, time => '', partition => $ENV{SLURM_PARTITION} // '',
  account => '', max_jobs_run => 0, job_name => '', sbatch_opts => '', dry_run => 0);
my %ignored = map { $_ => 1 } qw(config sync queue max_mem);
while (@ARGV && $ARGV[0] =~ /^--/) {
  my $arg = shift @ARGV;
  last if $arg eq '--';
  die_usage() if $arg eq '--help';
  my ($name, $value) = $arg =~ /^--([^=]+)=(.*)$/s ? ($1, $2) : (substr($arg, 2), undef);
  $name =~ tr/-/_/;
  if ($name eq 'dry_run') {
    # A flag; a following true/false is taken as its value for parse_options-style callers.
    $value = shift @ARGV if !defined $value && @ARGV && $ARGV[0] =~ /^(true|false)$/;
    $opt{dry_run} = (!defined $value || $value eq 'true') ? 1 : 0;
    next;
  }
  unless (defined $value) {
    die_usage("option $arg needs a value") unless @ARGV;
    $value = shift @ARGV;
  }
  if (exists $opt{$name}) {
    $opt{$name} = $value;
  } elsif (!$ignored{$name}) {
    print STDERR "$prog: warning: ignoring unknown option --$name $value\n";
  }
}
for my $name (qw(gpu num_threads max_jobs_run)) {
  die_usage("--$name needs a non-negative integer, not '$opt{$name}'") unless $opt{$name} =~ /^\d+$/;
}

my ($var, $first, $last) = (undef, 1, 1);
if (@ARGV && $ARGV[0] =~ /^([A-Za-z_][A-Za-z0-9_]*)=(\d+)(?::(\d+))?$/) {
  ($var, $first, $last) = ($1, $2, defined $3 ? $3 : $2);
  shift @ARGV;
  die_usage("empty job range $var=$first:$last") if $first > $last;
} elsif (@ARGV && $ARGV[0] =~ /^[A-Za-z_][A-Za-z0-9_]*=/) {
  die_usage("bad job range '$ARGV[0]': expected e.g. JOB=1:4");
}
die_usage("need a log file and a command") if @ARGV < 2;
my ($log_pattern, @cmd_args) = @ARGV;
if (defined $var && $last > $first && index($log_pattern, $var) < 0) {
  die_usage("$last tasks would share the log $log_pattern: put $var in the log name, e.g. log/x.$var.log");
}
my $cmd = @cmd_args == 1 ? $cmd_args[0] : join(' ', map { shell_word($_) } @cmd_args);
$log_pattern = File::Spec->rel2abs($log_pattern);

sub task_log {
  my ($id) = @_;
  (my $log = $log_pattern) =~ s/\Q$var\E/$id/g if defined $var;
  return defined $var ? $log : $log_pattern;
}

# Bash text whose value is $text with the job variable replaced by the array task id at run time.
sub with_task_id {
  my ($text) = @_;
  return sh_quote($text) unless defined $var;
  return join('"${SLURM_ARRAY_TASK_ID}"', map { sh_quote($_) } split(/\Q$var\E/, $text, -1));
}

my $job_name = $opt{job_name};
unless (length $job_name) {
  $job_name = basename($log_pattern);
  $job_name =~ s/\.log$//;
  $job_name =~ s/[._-]*\Q$var\E//g if defined $var;
  $job_name = 'job' unless length $job_name;
}
(my $script_name = $job_name) =~ s/[^A-Za-z0-9._-]/_/g;
my $script = File::Spec->catfile(dirname(task_log($first)), 'q', "$script_name.sh");
(my $output = $log_pattern) =~ s/\Q$var\E/%a/g if defined $var;
$output = $log_pattern unless defined $var;

my @sbatch = ('sbatch', '--wait', '--parsable', "--job-name=$job_name", "--array=$first-$last"
  . ($opt{max_jobs_run} ? "%$opt{max_jobs_run}" : ''), "--output=$output", '--export=ALL');
push @sbatch, "--mem=$opt{mem}" if length $opt{mem};
push @sbatch, "--gres=gpu:$opt{gpu}" if $opt{gpu};
push @sbatch, "--cpus-per-task=$opt{num_threads}" if $opt{num_threads} > 1;
push @sbatch, "--time=$opt{time}" if length $opt{time};
push @sbatch, "--partition=$opt{partition}" if length $opt{partition};
push @sbatch, "--account=$opt{account}" if length $opt{account};
push @sbatch, split(' ', $opt{sbatch_opts});
push @sbatch, $script;

my $cwd = File::Spec->rel2abs('.');
my $created = strftime('%Y-%m-%d %H:%M:%S', localtime);
my $cmd_text = with_task_id($cmd);
my $log_text = with_task_id($log_pattern);
my $batch = <<"END";
#!/usr/bin/env bash
# Written by $prog at $created: tasks $first-$last of job '$job_name'.
# Slurm sends this task's output to its log (sbatch --output).
cd ${\ sh_quote($cwd)} || exit 1
: "\${SLURM_ARRAY_TASK_ID:?this script runs as a Slurm array task (sbatch --array)}"
cmd=$cmd_text
log=$log_text
# Run by hand (SLURM_ARRAY_TASK_ID=3 bash this.sh) to redo one task locally; it writes the same log.
if [ -z "\${SLURMD_NODENAME:-}" ]; then
  mkdir -p "\$(dirname "\$log")" && exec > "\$log" 2>&1 || exit 1
fi
echo "# \$cmd"
echo "# Started at \$(date) on \$(hostname), array task \$SLURM_ARRAY_TASK_ID"
echo "#"
start=\$(date +%s)
bash -o pipefail -c "\$cmd" </dev/null
ret=\$?
end=\$(date +%s)
echo "# Accounting: time=\$((end - start)) threads=$opt{num_threads}"
echo "# Ended (code \$ret) at \$(date), elapsed time \$((end - start)) seconds"
exit \$ret
END

if ($opt{dry_run}) {
  print join(' ', map { shell_word($_) } @sbatch), "\n";
  print $batch;
  exit 0;
}

my $have_sbatch = grep { -x File::Spec->catfile($_, 'sbatch') } File::Spec->path();
unless ($have_sbatch) {
  print STDERR "$prog: sbatch not found on PATH, so Slurm jobs cannot be submitted from this machine.\n"
    . "  Run locally with utils/run.pl (set the command backend to local in cmd.sh),\n"
    . "  or add --dry-run to see the job that would be submitted.\n";
  exit 1;
}

my @logs = map { task_log($_) } $first .. $last;
for my $log (@logs) {
  my $dir = dirname($log);
  eval { make_path($dir) };
  die "$prog: cannot create log directory $dir: $@" if $@ || !-d $dir;
  # An old log could claim success for a task that never ran this time.
  unlink $log;
}
eval { make_path(dirname($script)) };
open(my $sfh, '>', "$script.tmp") or die "$prog: cannot write $script.tmp: $!\n";
print $sfh $batch;
close $sfh or die "$prog: cannot write $script.tmp: $!\n";
chmod 0755, "$script.tmp";
rename "$script.tmp", $script or die "$prog: cannot rename $script.tmp: $!\n";

my $job_id;
for my $sig (qw(INT TERM HUP)) {
  $SIG{$sig} = sub {
    if (defined $job_id) {
      system('scancel', $job_id);
      print STDERR "$prog: caught SIG$sig, cancelled Slurm job $job_id\n";
    }
    exit 1;
  };
}
my $sbatch_pid = open(my $out, '-|', @sbatch) or die "$prog: cannot run sbatch: $!\n";
while (my $line = <$out>) {
  if (!defined $job_id && $line =~ /^(\d+)/) {
    $job_id = $1;
    print STDERR "$prog: submitted Slurm job $job_id ($job_name, tasks $first-$last), waiting\n";
  } else {
    print STDERR $line;
  }
}
close $out;
my $sbatch_rc = $? >> 8;

my @failed;
for my $i (0 .. $#logs) {
  my $code;
  if (open(my $fh, '<', $logs[$i])) {
    while (<$fh>) { $code = $1 if /^# Ended \(code (\d+)\)/ }
    close $fh;
  }
  push @failed, [$logs[$i], $code] if !defined $code || $code != 0;
}
if (!@failed && $sbatch_rc != 0) {
  print STDERR "$prog: sbatch exited with $sbatch_rc although every task log reports success\n";
  exit 1;
}
exit 0 unless @failed;
my $total = @logs;
my $n = @failed;
if ($n == $total && !grep { -e $_->[0] } @failed) {
  print STDERR "$prog: no task of the job ran (sbatch exit $sbatch_rc); command was:\n  "
    . join(' ', map { shell_word($_) } @sbatch) . "\n";
  exit 1;
}
my @shown = map { $_->[0] } @failed;
@shown = (@shown[0 .. 19], '...') if @shown > 20;
print STDERR "$prog: $n / $total failed, log is in @shown\n";
my @killed = grep { !defined $_->[1] } @failed;
print STDERR "$prog: " . scalar(@killed) . " task(s) ended without an exit status (killed by Slurm? "
  . "check the time/memory limits, e.g. with sacct -j $job_id)\n" if @killed && defined $job_id;
exit 1;
