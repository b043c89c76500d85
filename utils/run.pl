#!/usr/bin/env perl
# Kaldi-style local job runner: runs one command, or an array of jobs JOB=1:N, on this machine.
#
#   run.pl [options] JOB=1:4 exp/log/x.JOB.log cmd args...   # JOB replaced by 1..4 everywhere
#   run.pl [options] exp/log/x.log "cmd | other > out"       # one job
#
# A lone command argument is handed to bash as a script, so pipes and redirections inside
# it work.  With several arguments, those containing whitespace or quotes are quoted as one
# word each and the rest pass through, so escaped shell operators (\| \> 2\>\&1) still work.
# The command runs under "bash -o pipefail" so a failing stage of a pipeline fails the job.
# Each job's log starts with the command and ends with its exit code and elapsed time.
#
# Options:
#   --max-jobs-run N   at most N jobs at once (default: the number of CPUs)
#   --mem, --gpu, --num-threads, --time, --partition, --config ... are accepted and ignored,
#   so cmd.sh can give run.pl and slurm.pl the same options.
use strict;
use warnings;
use File::Basename qw(basename dirname);
use File::Path qw(make_path);
use POSIX qw(strftime WNOHANG);

my $prog = basename($0);
my $usage = <<"END";
Usage: $prog [--max-jobs-run N] [JOB=1:N] <log-file> <command> [args...]
  e.g. $prog JOB=1:4 exp/log/split.JOB.log python3 x.py --part JOB
  JOB (any upper-case name works, e.g. SPLIT=1:4) is replaced in the log name and the command.
  Options Kaldi cluster scripts take (--mem 4G, --gpu 1, --num-threads 2, --time, --partition,
  --config) are accepted and ignored here.
END

sub die_usage {
  my ($msg) = @_;
  print STDERR "$prog: $msg\n" if defined $msg;
  print STDERR $usage;
  exit 1;
}

sub num_cpus {
  my $n = `nproc 2>/dev/null`;
  return $1 if defined $n && $n =~ /^(\d+)/ && $1 > 0;
  if (open(my $fh, '<', '/proc/cpuinfo')) {
    my $count = grep { /^processor\s*:/ } <$fh>;
    return $count if $count > 0;
  }
  return 1;
}

# Quote one argument for bash unless it is a plain word or a shell operator meant literally.
sub shell_word {
  my ($arg) = @_;
  return $arg if length($arg) && $arg !~ /[\s'"]/;
  (my $q = $arg) =~ s/'/'\\''/g;
  return "'$q'";
}

sub command_text {
  my @args = @_;
  return $args[0] if @args == 1;
  return join(' ', map { shell_word($_) } @args);
}

my $max_jobs = 0;
my %ignored = map { $_ => 1 } qw(mem gpu num_threads time partition config sync queue account
  job_name max_mem cpus);
while (@ARGV && $ARGV[0] =~ /^--/) {
  my $opt = shift @ARGV;
  last if $opt eq '--';
  die_usage() if $opt eq '--help';
  my ($name, $value);
  if ($opt =~ /^--([^=]+)=(.*)$/s) {
    ($name, $value) = ($1, $2);
  } else {
    ($name = $opt) =~ s/^--//;
    die_usage("option $opt needs a value") unless @ARGV;
    $value = shift @ARGV;
  }
  $name =~ tr/-/_/;
  if ($name eq 'max_jobs_run') {
    die_usage("--max-jobs-run needs a positive integer, not '$value'") unless $value =~ /^\d+$/ && $value > 0;
    $max_jobs = $value;
  } elsif (!$ignored{$name}) {
    print STDERR "$prog: warning: ignoring unknown option --$name $value\n";
  }
}
$max_jobs = num_cpus() unless $max_jobs;

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
  die_usage("$last jobs would share the log $log_pattern: put $var in the log name, e.g. log/x.$var.log");
}

sub subst {
  my ($text, $id) = @_;
  $text =~ s/\Q$var\E/$id/g if defined $var;
  return $text;
}

sub now { return strftime('%a %b %e %H:%M:%S %Z %Y', localtime) }

my %running;    # pid => [job id, log file, start time]
my @failed;
my $total = $last - $first + 1;

# Pass an interrupt on to the jobs we started, then leave.
for my $sig (qw(INT TERM HUP)) {
  $SIG{$sig} = sub {
    kill $sig, keys %running;
    print STDERR "$prog: caught SIG$sig, stopped " . scalar(keys %running) . " running job(s)\n";
    exit 1;
  };
}

sub start_job {
  my ($id) = @_;
  my $log = subst($log_pattern, $id);
  my $cmd = command_text(map { subst($_, $id) } @cmd_args);
  my $dir = dirname($log);
  eval { make_path($dir) };
  die "$prog: cannot create log directory $dir: $@" if $@ || !-d $dir;
  open(my $fh, '>', $log) or die "$prog: cannot write log file $log: $!\n";
  print $fh "# $cmd\n# Started at " . now() . "\n#\n";
  close $fh;
  my $pid = fork();
  die "$prog: fork failed: $!\n" unless defined $pid;
  if ($pid == 0) {
    $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
    open(STDOUT, '>>', $log) or die "$prog: cannot append to $log: $!\n";
    open(STDERR, '>&', \*STDOUT) or die "$prog: cannot redirect stderr: $!\n";
    open(STDIN, '<', '/dev/null');
    exec('bash', '-o', 'pipefail', '-c', $cmd) or die "$prog: cannot run bash: $!\n";
  }
  $running{$pid} = [$id, $log, time()];
}

sub finish_job {
  my ($pid, $status) = @_;
  my ($id, $log, $start) = @{ delete $running{$pid} };
  my $code = $status & 127 ? 128 + ($status & 127) : $status >> 8;
  my $elapsed = time() - $start;
  if (open(my $fh, '>>', $log)) {
    print $fh "# Accounting: time=$elapsed threads=1\n";
    print $fh "# Ended (code $code) at " . now() . ", elapsed time $elapsed seconds\n";
    close $fh;
  }
  push @failed, [$id, $log] if $code != 0;
}

my $next = $first;
while ($next <= $last || %running) {
  while ($next <= $last && keys(%running) < $max_jobs) {
    start_job($next++);
  }
  my $pid = waitpid(-1, 0);
  last if $pid < 0;
  finish_job($pid, $?) if exists $running{$pid};
}

exit 0 unless @failed;
@failed = sort { $a->[0] <=> $b->[0] } @failed;
my $n = @failed;
my @logs = map { $_->[1] } @failed;
my @shown = @logs > 20 ? (@logs[0 .. 19], '...') : @logs;
print STDERR "$prog: $n / $total failed, log is in @shown\n";
# The end of the first failed log usually says why; show it so nobody has to go looking.
if (open(my $fh, '<', $logs[0])) {
  my @lines = <$fh>;
  close $fh;
  my @tail = @lines > 10 ? @lines[-10 .. -1] : @lines;
  print STDERR "$prog: last lines of $logs[0]:\n", map { "  $_" } @tail;
}
exit 1;
