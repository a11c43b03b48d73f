#!/bin/sh
# /bench/run.sh WORKLOAD [ARGS...]: runs one vmon paging-comparison workload and brackets its
# output with stable marker lines for a harness to cut:
#   vmon-bench: begin WORKLOAD ARGS...
#   result: WORKLOAD ... checksum=...      (identical under any correct MMU)
#   time: WORKLOAD ... ms                  (ignored when comparing)
#   vmon-bench: end WORKLOAD status N
# The script exits with the workload's status. Workloads and their arguments are listed in
# images/workloads/README.md; "run.sh list" prints the names.
WORKLOADS="forkwait execloop faultstorm mmapchurn mprotect pipepong cpuloop churn lua sqlite3 xz"

if [ $# -lt 1 ]; then
	echo "usage: /bench/run.sh WORKLOAD [ARGS...] (workloads: $WORKLOADS)" >&2
	exit 2
fi
w=$1
shift
case " $WORKLOADS list " in
*" $w "*) ;;
*)
	echo "run.sh: unknown workload \"$w\" (known: $WORKLOADS)" >&2
	exit 2
	;;
esac
if [ "$w" = list ]; then
	echo "$WORKLOADS"
	exit 0
fi

echo "vmon-bench: begin $(echo $w "$@")"
case "$w" in
lua)
	/bench/bin/timeit lua /bench/bin/lua /bench/lua/bench.lua "$@"
	;;
sqlite3)
	n=${1:-1000}
	case "$n" in
	'' | *[!0-9]*)
		echo "sqlite3: argument N is not a number: \"$n\"" >&2
		false
		;;
	*)
		# nolock: small kernels have no POSIX file locks (CONFIG_FILE_LOCKING), and the
		# database has a single user anyway.
		db=/tmp/vmon-bench-$$.db
		rm -f "$db"
		{
			echo ".parameter set @n $n"
			cat /bench/sqlite3/bench.sql
		} | /bench/bin/timeit sqlite3 /bench/bin/sqlite3 "file:$db?nolock=1"
		;;
	esac
	;;
xz)
	# xz KIB [LEVEL]: compress KIB KiB of generated text at LEVEL (default 6), decompress it,
	# compare with the input; the checksum is the start of the MD5 of the compressed bytes.
	kib=${1:-1024}
	level=${2:-6}
	case "$kib:$level" in
	*[!0-9:]* | :* | *:*:* | *:?? | *:)
		echo "xz: KIB must be a number and LEVEL 0..9: \"$kib\" \"$level\"" >&2
		false
		;;
	*)
		in=/tmp/vmon-bench-$$.txt
		/bench/bin/gendata "$kib" 1 >"$in" &&
			/bench/bin/timeit xz sh -c "/bench/bin/xz -$level -T1 -c '$in' >'$in.xz' &&
				/bench/bin/xz -d -c '$in.xz' | cmp -s - '$in'" &&
			echo "result: xz kib=$kib level=$level compressed=$(wc -c <"$in.xz") checksum=$(md5sum <"$in.xz" | cut -c1-16)"
		;;
	esac
	;;
*)
	"/bench/bin/$w" "$@"
	;;
esac
status=$?
rm -f /tmp/vmon-bench-$$.db /tmp/vmon-bench-$$.txt /tmp/vmon-bench-$$.txt.xz
echo "vmon-bench: end $w status $status"
exit $status
